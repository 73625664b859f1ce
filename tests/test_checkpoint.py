import json

import pytest
import torch

from explainvec.data import Preprocess
from explainvec.models.checkpoint import (
    Checkpoint,
    CheckpointMeta,
    load_checkpoint,
    save_checkpoint,
    sidecar_path,
)
from explainvec.models.fingerprint import fingerprint
from explainvec.models.vit import GRID_PRESETS


def meta_for(model):
    return CheckpointMeta(
        kind="predict",
        architecture={**GRID_PRESETS["4x4"], "num_classes": 5},
        class_names=list("abcde"),
        preprocess=Preprocess(image_size=32),
        base_fingerprint=fingerprint(model.state_dict()),
        training={"config": {"lr": 1e-3}},
        metrics={"val_accuracy": 0.5},
    )


def test_round_trip_gives_identical_logits(tiny_vit, tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", Checkpoint(tiny_vit, meta_for(tiny_vit)))
    loaded = load_checkpoint(path)
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), tiny_vit(images))
    assert loaded.meta == meta_for(tiny_vit)
    assert fingerprint(loaded.model.state_dict()) == fingerprint(tiny_vit.state_dict())
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["class_names"] == list("abcde") and sidecar["format"].startswith("explainvec")
    # safetensors, not pickle: an 8-byte header length followed by JSON.
    raw = path.read_bytes()
    assert raw[8:9] == b"{" and not raw.startswith(b"\x80")


def test_fingerprint_changes_with_any_weight(tiny_vit):
    before = fingerprint(tiny_vit.state_dict())
    with torch.no_grad():
        tiny_vit.blocks[0].attn.qkv.weight[0, 0] += 1e-3
    assert fingerprint(tiny_vit.state_dict()) != before


def test_non_finite_weights_are_refused_and_nothing_is_written(tiny_vit, tmp_path):
    with torch.no_grad():
        tiny_vit.head.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        save_checkpoint(tmp_path / "m.safetensors", Checkpoint(tiny_vit, meta_for(tiny_vit)))
    assert list(tmp_path.iterdir()) == []


def test_missing_or_bad_sidecar_is_a_clear_error(tiny_vit, tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", Checkpoint(tiny_vit, meta_for(tiny_vit)))
    sidecar_path(path).write_text("{}")
    with pytest.raises(ValueError, match="not valid"):
        load_checkpoint(path)
    sidecar_path(path).unlink()
    with pytest.raises(FileNotFoundError, match="sidecar"):
        load_checkpoint(path)
