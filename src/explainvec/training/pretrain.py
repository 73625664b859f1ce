"""Pretraining the base ViT from scratch on the embedded mixture corpus."""

from __future__ import annotations

import torch

from explainvec.data.preprocess import Preprocess
from explainvec.data.sources import load_data
from explainvec.models.checkpoint import Checkpoint, CheckpointMeta
from explainvec.models.fingerprint import fingerprint
from explainvec.models.prediction import predict_logits, top1_accuracy
from explainvec.models.vit import GRID_PRESETS, build_vit
from explainvec.progress import SILENT, Tracker
from explainvec.training.config import TrainConfig
from explainvec.training.loop import fit

PRETRAIN_DATA = "synthetic:mixture"
PRETRAIN_CONFIG = TrainConfig(epochs=12, lr=1e-3, train_size=8000, eval_size=1000, batch_size=128)
"""Defaults measured on 2 CPU cores (see the README's results)."""


def pretrain(preset: str, config: TrainConfig = PRETRAIN_CONFIG, *, progress: Tracker = SILENT) -> Checkpoint:
    """A base checkpoint: a tiny ViT of grid ``preset`` trained on the mixture corpus."""
    if preset not in GRID_PRESETS:
        raise ValueError(f"unknown grid preset {preset!r}; known: {', '.join(GRID_PRESETS)}")
    architecture = GRID_PRESETS[preset]
    preprocess = Preprocess(image_size=architecture["img_size"])
    load = {"preprocess": preprocess, "patch_size": architecture["patch_size"], "seed": config.seed}
    train = load_data(PRETRAIN_DATA, "train", size=config.train_size, **load)
    val = load_data(PRETRAIN_DATA, "val", size=config.eval_size, **load)
    architecture = {**architecture, "num_classes": len(train.class_names)}
    torch.manual_seed(config.seed)
    model = build_vit(architecture)
    history = fit(model, train, config, progress=progress, description=f"pretrain {preset}")
    accuracy = top1_accuracy(*predict_logits(model, val, device=config.device))
    meta = CheckpointMeta(
        kind="base",
        architecture=architecture,
        class_names=train.class_names,
        preprocess=preprocess,
        base_fingerprint=fingerprint(model.state_dict()),
        training={"mode": "pretrain", "data": PRETRAIN_DATA, "config": config.model_dump(), "loss": history},
        metrics={"val_accuracy": accuracy},
    )
    return Checkpoint(model.cpu(), meta)
