"""Models already in memory: the README's notebook snippet as written, and ``wrap`` on timm and
``transformers`` models (same logits as the model, refusals)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from tests.test_huggingface import VIT
from transformers import ViTConfig, ViTForImageClassification

import explainvec
from explainvec.evaluation.explain_files import ImageItem, explain_to_folder
from explainvec.models.checkpoint import Checkpoint, save_checkpoint
from explainvec.models.records import ExplanationRecord
from explainvec.models.vit import GRID_PRESETS, build_vit

README = Path(__file__).parents[1] / "README.md"
TINY_HF = {**VIT, "num_labels": 5}


def nudged(module: torch.nn.Module, seed: int, scale: float = 0.02) -> torch.nn.Module:
    """A copy of ``module`` with noise on every parameter (a stand-in for a fine-tune)."""
    other = copy.deepcopy(module)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return other


def readme_snippet() -> str:
    """The README's notebook snippet: the python block after "In a notebook"."""
    text = README.read_text()
    block = re.search(r"In a notebook.*?```python\n(.*?)```", text, re.S)
    assert block, "the README has no notebook snippet"
    return block.group(1)


def test_the_readme_notebook_snippet_runs(tmp_path, monkeypatch):
    torch.manual_seed(0)
    hf_base_model = ViTForImageClassification(ViTConfig(**TINY_HF)).eval()
    base = explainvec.wrap(hf_base_model)
    save_checkpoint(tmp_path / "base.safetensors", base)
    explain_meta = base.meta.model_copy(
        update={"kind": "explain", "explanation": ExplanationRecord(readout="logit")}
    )
    sem = Checkpoint(nudged(base.model, 1), explain_meta)
    explainvec.ExplainabilityVector.from_checkpoints(sem, base).save(tmp_path / "tau.safetensors")
    vit = nudged(hf_base_model, 2)  # the user's fine-tune, a transformers model in memory
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    snippet = readme_snippet()
    assert len(snippet.strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)
    namespace = {"vit": vit, "images": images}
    exec(snippet, namespace)
    maps, pictures, out = namespace["maps"], namespace["pictures"], namespace["out"]
    assert isinstance(maps, np.ndarray) and maps.shape == (3, 32, 32)
    assert len(pictures) == 3 and all(isinstance(p, Image.Image) and p.size == (32, 32) for p in pictures)
    with torch.no_grad():
        assert torch.allclose(namespace["model"].model(images), vit(pixel_values=images).logits, atol=1e-5)
    assert out.attributions.shape == (3, 16, 5)
    assert namespace["model"].meta.base_fingerprint == base.meta.base_fingerprint


def test_wrap_a_timm_model_keeps_its_logits_and_map():
    torch.manual_seed(0)
    vit = build_vit({**GRID_PRESETS["4x4"], "num_classes": 5}).eval()
    wrapped = explainvec.wrap(vit, list("abcde"))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = explainvec.SelfExplainingViT.from_checkpoint(wrapped)(images)
        assert torch.allclose(out.logits, vit(images), atol=1e-6)
    assert wrapped.meta.architecture == {**GRID_PRESETS["4x4"], "num_classes": 5}
    assert wrapped.model is not vit and wrapped.meta.class_names == list("abcde")


def test_wrap_a_named_timm_model_with_overrides():
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, num_classes=3).eval()
    wrapped = explainvec.wrap(vit)
    assert wrapped.meta.architecture["timm_model"] == "vit_tiny_patch16_224"
    assert wrapped.meta.class_names == ["class_0", "class_1", "class_2"]
    with torch.no_grad():
        assert torch.equal(wrapped.model(torch.zeros(1, 3, 32, 32)), vit(torch.zeros(1, 3, 32, 32)))


def test_wrap_refusals():
    with pytest.raises(ValueError, match="not a timm VisionTransformer or a transformers ViT"):
        explainvec.wrap(torch.nn.Linear(3, 3))
    pooled = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, global_pool="avg")
    with pytest.raises(ValueError, match="classifies from its class token"):
        explainvec.wrap(pooled)
    base = explainvec.wrap(build_vit({**GRID_PRESETS["7x7"], "num_classes": 5}))
    with pytest.raises(ValueError, match="patch grid"):
        explainvec.wrap(build_vit({**GRID_PRESETS["4x4"], "num_classes": 5}), base=base)


def test_overlay_draws_the_map_over_the_picture_smooth_or_per_patch():
    torch.manual_seed(0)
    explainer = explainvec.SelfExplainingViT(
        build_vit({**GRID_PRESETS["4x4"], "num_classes": 5}).eval(), list("abcde")
    )
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = explainer(images)
    preprocess = explainvec.Preprocess(image_size=32)
    smooth = np.asarray(explainvec.overlay(images, out, preprocess)[0], dtype=float)
    blocks = np.asarray(explainvec.overlay(images, out, preprocess, smooth=False)[0], dtype=float)
    assert smooth.shape == blocks.shape == (32, 32, 3) and np.abs(smooth - blocks).max() > 0
    per_patch = out.heatmap()[0]
    assert torch.equal(per_patch[:8, :8], per_patch[0, 0].expand(8, 8))  # one block per patch
    assert not torch.equal(
        out.heatmap(smooth=True)[0][:8, :8], out.heatmap(smooth=True)[0][0, 0].expand(8, 8)
    )


def test_explain_to_folder_draws_smooth_maps_on_request(tmp_path):
    torch.manual_seed(0)
    explainer = explainvec.SelfExplainingViT(
        build_vit({**GRID_PRESETS["4x4"], "num_classes": 5}).eval(), list("abcde")
    )
    items = [ImageItem("one", torch.randn(3, 32, 32))]
    preprocess = explainvec.Preprocess(image_size=32)
    pictures = {}
    for smooth in (False, True):
        explain_to_folder(explainer, preprocess, items, tmp_path / str(smooth), smooth=smooth)
        with Image.open(tmp_path / str(smooth) / "one.png") as png:
            pictures[smooth] = np.asarray(png.convert("RGB"), dtype=float)
    assert (
        pictures[True].shape == pictures[False].shape
        and np.abs(pictures[True] - pictures[False]).mean() > 0.5
    )
