"""Checkpoints: tensors in safetensors, everything else in a JSON sidecar beside them. Never pickle."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError
from timm.models.vision_transformer import VisionTransformer
from torch.utils.data import Dataset

from explainvec.data.preprocess import Preprocess
from explainvec.data.sources import load_data
from explainvec.io import read_tensors, write_json, write_tensors
from explainvec.models.adapter import has_adapter
from explainvec.models.vit import build_vit, patch_size

FORMAT = "explainvec-checkpoint/1"


class CheckpointMeta(BaseModel):
    """What a checkpoint's sidecar holds: enough to rebuild and use the model with no other input."""

    format: str = FORMAT
    kind: Literal["base", "predict", "explain", "edited"]
    architecture: dict
    class_names: list[str] = Field(min_length=1)
    preprocess: Preprocess
    base_fingerprint: str
    training: dict = Field(default_factory=dict)
    metrics: dict = Field(default_factory=dict)
    explanation: dict = Field(default_factory=dict)  # e.g. {"readout": "logit", "supervision": "embedding"}


@dataclass
class Checkpoint:
    """A model and its metadata."""

    model: VisionTransformer
    meta: CheckpointMeta

    def load_split(self, data: str, split: str, **kwargs) -> Dataset:
        """A split of ``data`` preprocessed for this model; ``kwargs`` (size, seed, masks) go to load_data."""
        return load_data(
            data, split, preprocess=self.meta.preprocess, patch_size=patch_size(self.model), **kwargs
        )


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of ``path`` (same name, ``.json``)."""
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``path`` (safetensors) and its sidecar, each atomically; tensors are checked to be finite."""
    path, model, meta = Path(path), checkpoint.model, checkpoint.meta
    if path.suffix != ".safetensors":
        raise ValueError(f"checkpoint path {path} should end in .safetensors")
    if meta.class_names and len(meta.class_names) != model.num_classes:
        raise ValueError(f"{len(meta.class_names)} class names for a model with {model.num_classes} outputs")
    if has_adapter(model) != bool(meta.architecture.get("explain_adapter")):
        meta = meta.model_copy(
            update={"architecture": {**meta.architecture, "explain_adapter": has_adapter(model)}}
        )
    write_tensors(path, model.state_dict())
    write_json(sidecar_path(path), meta.model_dump(mode="json"))
    return path


def load_meta(path: str | Path) -> CheckpointMeta:
    """Read and validate a checkpoint's sidecar."""
    side = sidecar_path(path)
    if not side.is_file():
        raise FileNotFoundError(f"checkpoint sidecar {side} is missing (expected beside {path})")
    try:
        return CheckpointMeta.model_validate(json.loads(side.read_text()))
    except (json.JSONDecodeError, ValidationError) as error:
        raise ValueError(f"checkpoint sidecar {side} is not valid: {error}") from error


def load_checkpoint(path: str | Path, device: str = "cpu") -> Checkpoint:
    """Rebuild the model of a checkpoint from its sidecar and load its weights (in eval mode).

    Weights holding NaN or Inf are refused (ValueError naming the file and the tensor)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    meta = load_meta(path)
    model = build_vit(meta.architecture)
    model.load_state_dict(read_tensors(path, device))
    return Checkpoint(model.to(device).eval(), meta)
