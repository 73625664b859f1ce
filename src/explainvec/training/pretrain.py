"""Pretraining the base ViT from scratch: on the embedded mixture corpus, Fashion-MNIST or a folder."""

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


def architecture_of(preset: str, *, image_size: int | None = None, patch_size: int | None = None) -> dict:
    """The ViT keyword arguments of grid ``preset``, with its image or patch size replaced if given."""
    if preset not in GRID_PRESETS:
        raise ValueError(f"unknown grid preset {preset!r}; known: {', '.join(GRID_PRESETS)}")
    architecture = dict(GRID_PRESETS[preset])
    architecture["img_size"] = image_size or architecture["img_size"]
    architecture["patch_size"] = patch_size or architecture["patch_size"]
    if architecture["img_size"] % architecture["patch_size"]:
        size, patch = architecture["img_size"], architecture["patch_size"]
        raise ValueError(f"image size {size} is not a multiple of patch size {patch}")
    return architecture


def pretrain(
    architecture: str | dict,
    config: TrainConfig = PRETRAIN_CONFIG,
    *,
    data: str = PRETRAIN_DATA,
    progress: Tracker = SILENT,
) -> Checkpoint:
    """A base checkpoint: a tiny ViT (a grid preset's name, or its keyword arguments) trained from scratch
    on ``data`` (``synthetic:<domain>``, ``fashion:<subset>`` or an image folder); patch dropping as
    ``config.keep_min`` says (1: none, as ordinary supervised ViTs are trained)."""
    architecture = architecture_of(architecture) if isinstance(architecture, str) else dict(architecture)
    preprocess = Preprocess(image_size=architecture["img_size"])
    load = {"preprocess": preprocess, "patch_size": architecture["patch_size"], "seed": config.seed}
    train = load_data(data, "train", size=config.train_size, **load)
    val = load_data(data, "val", size=config.eval_size, **load)
    architecture = {**architecture, "num_classes": len(train.class_names)}
    torch.manual_seed(config.seed)
    model = build_vit(architecture)
    grid = f"{architecture['img_size'] // architecture['patch_size']}"
    history = fit(model, train, config, progress=progress, description=f"pretrain {grid}x{grid} on {data}")
    accuracy = top1_accuracy(*predict_logits(model, val, device=config.device))
    meta = CheckpointMeta(
        kind="base",
        architecture=architecture,
        class_names=train.class_names,
        preprocess=preprocess,
        base_fingerprint=fingerprint(model.state_dict()),
        training={"mode": "pretrain", "data": data, "config": config.model_dump(), "loss": history},
        metrics={"val_accuracy": accuracy},
    )
    return Checkpoint(model.cpu(), meta)
