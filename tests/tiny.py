"""Tiny random checkpoints for tests that need real files but no training."""

from __future__ import annotations

import torch

from explainvec.data.preprocess import Preprocess
from explainvec.models.checkpoint import Checkpoint, CheckpointMeta
from explainvec.models.fingerprint import fingerprint
from explainvec.models.vit import build_vit

TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2}


def make_checkpoint(
    architecture: dict = TINY, *, seed: int = 0, kind: str = "predict", base: str | None = None
) -> Checkpoint:
    """A random tiny ViT (3 classes) and its metadata; ``base`` overrides the base fingerprint."""
    torch.manual_seed(seed)
    model = build_vit({**architecture, "num_classes": 3}).eval()
    meta = CheckpointMeta(
        kind=kind,
        architecture={**architecture, "num_classes": 3},
        class_names=["a", "b", "c"],
        preprocess=Preprocess(image_size=architecture["img_size"]),
        base_fingerprint=base or fingerprint(model.state_dict()),
    )
    return Checkpoint(model, meta)
