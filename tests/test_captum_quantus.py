"""captum and Quantus: the map in captum's ``Attribution`` shape (and captum's visualisation drawing it),
and two Quantus metrics run on the single pass and on Kernel SHAP-150 through ``explain_func``."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import quantus
import torch
from captum.attr import Attribution, visualization

import explainvec
from explainvec.models.vit import GRID_PRESETS, build_vit

METHODS = ("single_pass", "kernelshap150", "random")


@pytest.fixture
def explainer():
    torch.manual_seed(0)
    return explainvec.SelfExplainingViT(
        build_vit({**GRID_PRESETS["4x4"], "num_classes": 5}).eval(), list("abcde")
    )


def test_attribute_is_the_patch_map_upsampled_to_the_input(explainer):
    images = torch.randn(3, 3, 32, 32)
    method = explainvec.PatchAttribution(explainer)
    assert isinstance(method, Attribution) and not method.has_convergence_delta()
    maps = method.attribute(images, target=2)
    assert maps.shape == images.shape and torch.equal(maps[:, 0], maps[:, 2])
    with torch.no_grad():
        patches = explainer(images).attributions[:, :, 2].reshape(3, 4, 4)
    assert torch.allclose(maps[:, 0, ::8, ::8], patches)
    predicted = method.attribute(images)
    with torch.no_grad():
        own = explainer(images).heatmap()
    assert torch.allclose(predicted[:, 1], own)
    smooth = explainvec.PatchAttribution(explainer, smooth=True).attribute(images, target=[0, 1, 2])
    assert not torch.equal(smooth, method.attribute(images, target=[0, 1, 2]))
    figure, _ = visualization.visualize_image_attr(
        maps[0].permute(1, 2, 0).numpy(),
        images[0].permute(1, 2, 0).numpy(),
        "blended_heat_map",
        "all",
        use_pyplot=False,
    )
    assert figure is not None


def test_explain_func_gives_quantus_its_shape_for_any_method(explainer):
    images, targets = (
        np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32),
        np.array([1, 4]),
    )
    for method in ("single_pass", "kernelshap16"):
        maps = explainvec.explain_func(explainer.vit, images, targets, method=method, device="cpu")
        assert isinstance(maps, np.ndarray) and maps.shape == (2, 1, 32, 32) and np.isfinite(maps).all()


def test_quantus_faithfulness_and_localisation_of_the_single_pass_and_kernel_shap(base):
    """On the pretrained 4x4 base (the λ = 0 map of a prediction-only model) and mixture test images with
    their evidence masks; Kernel SHAP-150 must beat random maps on both metrics."""
    explainer = explainvec.SelfExplainingViT.from_checkpoint(base).eval()
    test = base.load_split("synthetic:mixture", "test", size=16)
    x = torch.stack([test[i][0] for i in range(16)]).numpy()
    y = np.array([test[i][1] for i in range(16)])
    s = torch.stack([test[i][2] for i in range(16)])[:, None].numpy()
    scores = {}
    for method in METHODS:
        np.random.seed(0)  # Quantus draws its perturbed pixel subsets from numpy's global generator
        kwargs = {"method": method, "readout": explainer.readout}
        common = {"disable_warnings": True, "display_progressbar": False}
        faithfulness = quantus.FaithfulnessCorrelation(
            nr_runs=20, subset_size=64, perturb_baseline="black", return_aggregate=False, **common
        )
        localisation = quantus.RelevanceRankAccuracy(**common)
        run = {"model": explainer.vit, "x_batch": x, "y_batch": y, "device": "cpu"}
        run |= {"explain_func": explainvec.explain_func, "explain_func_kwargs": kwargs}
        scores[method] = (float(np.mean(faithfulness(**run))), float(np.mean(localisation(**run, s_batch=s))))
        faith, rank = scores[method]
        print(f"{method:>14}: faithfulness correlation {faith:+.3f}, relevance rank accuracy {rank:.3f}")
    for faith, rank in scores.values():
        assert -1 <= faith <= 1 and 0 <= rank <= 1
    assert (
        scores["kernelshap150"][0] > scores["random"][0] and scores["kernelshap150"][1] > scores["random"][1]
    )
