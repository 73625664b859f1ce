"""The evaluation suite on a tiny random ViT: every baseline runs, and the metrics rank them sensibly."""

import pytest
import torch

from explainvec.evaluation.baselines import ATTRIBUTORS, get_attributor, random_vector_like
from explainvec.evaluation.suite import (
    Batch,
    Method,
    SuiteConfig,
    budget_curve,
    equivalent_budget,
    evaluate_methods,
)
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.models.vit import build_vit
from explainvec.vectors import ExplainabilityVector


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    vit = build_vit(
        {"img_size": 24, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2, "num_classes": 3}
    ).eval()
    return SelfExplainingViT(vit, ["a", "b", "c"], "logit").eval()


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(1)
    masks = (torch.rand(8, 9, generator=generator) > 0.6).float()
    return Batch(
        torch.randn(8, 3, 24, 24, generator=generator), torch.randint(3, (8,), generator=generator), masks
    )


def test_every_baseline_gives_a_map_per_patch_and_class(model, batch):
    with torch.no_grad():
        out = model(batch.images)
    for name in [*ATTRIBUTORS, "kernelshap32"]:
        maps = get_attributor(name)(model, batch.images, out)
        assert maps.shape == (8, 9, 3) and maps.isfinite().all(), name
    with pytest.raises(ValueError, match="unknown baseline"):
        get_attributor("saliency-of-my-dreams")


def test_suite_ranks_kernel_shap_above_random(model, batch):
    config = SuiteConfig(reference_budget=256, resamples=100, budgets=[8, 32])
    methods = [Method(n, model, get_attributor(n), 1) for n in ("kernelshap150", "random", "rollout")]
    results, reference = evaluate_methods(
        methods, Batch(batch.images, batch.labels, batch.masks, model.vit), config
    )
    by_name = {r.method: r.metrics for r in results}
    assert by_name["kernelshap150"]["pearson"]["mean"] > 0.9 > by_name["random"]["pearson"]["mean"]
    assert (
        by_name["kernelshap150"]["insertion_minus_deletion"]["mean"]
        > by_name["random"]["insertion_minus_deletion"]["mean"]
    )
    for metrics in by_name.values():
        assert {"mask_mass", "pixel_insertion_auc", "sensitivity_n", "spearman", "agreement"} <= set(metrics)
        assert metrics["agreement"]["mean"] == 1.0  # the reference is the model itself
        for summary in metrics.values():
            assert summary["low"] <= summary["mean"] <= summary["high"]
    assert reference["reference_mean_std_error"]["random"] > 0
    curve = budget_curve(model, batch, config)
    assert curve[-1]["pearson"] > curve[0]["pearson"]


def test_equivalent_budget_interpolates_in_log_budget():
    curve = [{"budget": 16, "pearson": 0.5}, {"budget": 64, "pearson": 0.9}, {"budget": 256, "pearson": 0.95}]
    assert equivalent_budget(curve, "pearson", 0.7) == pytest.approx(32.0)
    assert equivalent_budget(curve, "pearson", 0.2) == 16.0
    assert equivalent_budget(curve, "pearson", 0.99) is None


def test_random_vector_matches_tau_norm_per_block(model):
    tensors = {
        name: torch.randn_like(p) * (i + 1)
        for i, (name, p) in enumerate(model.vit.named_parameters())
        if not name.startswith("head")
    }
    tau = ExplainabilityVector(tensors, {"base_fingerprint": "x"})
    control = random_vector_like(tau, seed=3)
    for block, norm in tau.block_norms().items():
        assert control.block_norms()[block] == pytest.approx(norm, rel=1e-5)
    assert abs(control.dot(tau)) < 0.2 * tau.norm() ** 2
