"""Checkpoints: tensors in safetensors, everything else in a JSON sidecar beside them. Never pickle."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, ValidationError
from timm.models.vision_transformer import VisionTransformer
from torch.utils.data import Dataset

from explainvec.data.preprocess import Preprocess
from explainvec.data.sources import load_data
from explainvec.io import read_tensors, write_json, write_tensors
from explainvec.models.adapter import has_adapter
from explainvec.models.records import Architecture, ExplanationRecord, Record, TrainingRecord, one_error
from explainvec.models.vit import build_vit, patch_size
from explainvec.vocabulary import CheckpointKind

FORMAT = "explainvec-checkpoint/1"


class CheckpointMeta(Record):
    """What a checkpoint's sidecar holds: enough to rebuild and use the model with no other input."""

    format: Literal["explainvec-checkpoint/1"] = FORMAT
    kind: CheckpointKind
    architecture: Architecture
    class_names: list[str] = Field(min_length=1)
    preprocess: Preprocess
    base_fingerprint: str
    training: TrainingRecord = Field(default_factory=TrainingRecord)
    metrics: dict[str, float] = Field(default_factory=dict)
    explanation: ExplanationRecord = Field(default_factory=ExplanationRecord)


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

    def split_images(self, data: str, split: str, count: int) -> torch.Tensor:
        """The first ``count`` images ``[N, 3, H, W]`` of ``data``'s ``split`` (fewer if it is smaller)."""
        part = self.load_split(data, split, size=count)
        return torch.stack([part[i][0] for i in range(min(count, len(part)))])


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
    write_json(sidecar_path(path), meta.dump())
    return path


def load_meta(path: str | Path) -> CheckpointMeta:
    """Read and validate a checkpoint's sidecar."""
    side = sidecar_path(path)
    if not side.is_file():
        raise FileNotFoundError(f"checkpoint sidecar {side} is missing (expected beside {path})")
    try:
        data = json.loads(side.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"checkpoint sidecar {side} is not valid JSON: {error}") from error
    try:
        return CheckpointMeta.model_validate(data)
    except ValidationError as error:
        raise ValueError(f"checkpoint sidecar {side} is not valid: {one_error(error)}") from error


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
