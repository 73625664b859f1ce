"""The demo's base checkpoints, pretrained once per preset and config and reused from the cache."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from platformdirs import user_cache_dir

from explainvec.models.checkpoint import load_checkpoint, save_checkpoint
from explainvec.progress import SILENT, Tracker
from explainvec.training.config import TrainConfig
from explainvec.training.pretrain import PRETRAIN_CONFIG, PRETRAIN_DATA, architecture_of, pretrain


def cache_dir() -> Path:
    """``$EXPLAINVEC_CACHE`` or the user cache folder of explainvec."""
    return Path(os.environ.get("EXPLAINVEC_CACHE") or user_cache_dir("explainvec"))


def cached_base(
    preset: str,
    config: TrainConfig = PRETRAIN_CONFIG,
    *,
    data: str = PRETRAIN_DATA,
    progress: Tracker = SILENT,
) -> Path:
    """Path of the base checkpoint for ``preset``, ``config`` and pretraining ``data``, pretraining it first
    if not cached."""
    architecture = architecture_of(preset)
    fields = {"architecture": architecture, "config": config.model_dump()}
    key = json.dumps(fields | ({"data": data} if data != PRETRAIN_DATA else {}), sort_keys=True)
    path = cache_dir() / f"base-{preset}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.safetensors"
    if path.is_file():
        try:
            load_checkpoint(path)
            return path
        except (ValueError, OSError, RuntimeError):
            pass  # a damaged cache entry is rebuilt below
    save_checkpoint(path, pretrain(architecture, config, data=data, progress=progress))
    return path
