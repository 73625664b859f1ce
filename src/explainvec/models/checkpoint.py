"""Checkpoints: tensors in safetensors, everything else in a JSON sidecar beside them. Never pickle.

A pair is written as one unit and validated as a whole when read: the sidecar against its schema, the
tensors against the architecture it records, and the two against each other by a shared weights id.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, ValidationError
from timm.models.vision_transformer import VisionTransformer
from torch.utils.data import Dataset

from explainvec.data.preprocess import Preprocess
from explainvec.data.sources import load_data
from explainvec.errors import FileFormatError, OutputError
from explainvec.io import (
    atomic_write_together,
    check_outputs,
    json_writer,
    read_header,
    read_tensors,
    require_finite,
    tensor_writer,
)
from explainvec.models.adapter import adapter_field, kind_of
from explainvec.models.records import Architecture, ExplanationRecord, Record, TrainingRecord, one_error
from explainvec.models.vit import build_vit, image_size, patch_size
from explainvec.vocabulary import CheckpointKind

FORMAT = "explainvec-checkpoint/2"
"""Format 2 adds the weights id; format 1 files (no id) are read as before."""
WEIGHTS_ID = "weights_id"


class CheckpointMeta(Record):
    """What a checkpoint's sidecar holds: enough to rebuild and use the model with no other input."""

    format: Literal["explainvec-checkpoint/1", "explainvec-checkpoint/2"] = FORMAT
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


def check_checkpoint_output(
    out: str | Path, *, inputs: tuple[str | Path | None, ...] = (), overwrite: bool = False
) -> None:
    """Refuse, before any work, a checkpoint or vector ``out`` whose file or sidecar is one of the
    ``inputs`` (checkpoints or vectors; always) or already exists (unless ``overwrite``)."""
    given = [p for path in inputs if path is not None for p in (Path(path), sidecar_path(path))]
    check_outputs([out, sidecar_path(out)], inputs=given, overwrite=overwrite)


def write_with_sidecar(path: Path, tensors: dict[str, torch.Tensor], sidecar: dict) -> Path:
    """Write safetensors ``path`` and its JSON sidecar as one unit: both are written to temporary files
    first, a fresh weights id goes into the safetensors header and the sidecar, and the sidecar is renamed
    into place last; ``check_pair`` refuses a pair whose ids differ, so a crash between the two renames
    leaves a pair that is refused, never one that loads mismatched."""
    weights_id = uuid.uuid4().hex
    atomic_write_together(
        [
            (path, tensor_writer(path, tensors, {WEIGHTS_ID: weights_id})),
            (sidecar_path(path), json_writer({**sidecar, WEIGHTS_ID: weights_id})),
        ]
    )
    return path


def read_sidecar(path: Path, what: str) -> tuple[dict, object]:
    """The sidecar of ``path`` as a JSON object, and the weights id it records (format 2), taken out."""
    side = sidecar_path(path)
    if not side.is_file():
        raise FileNotFoundError(f"{what} sidecar {side} is missing (expected beside {path})")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FileFormatError(f"{what} sidecar {side} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise FileFormatError(f"{what} sidecar {side} is not valid: it holds a JSON {type(data).__name__}")
    return data, data.pop(WEIGHTS_ID, None)


def check_pair(path: Path, weights_id: object, header: dict[str, str], *, required: bool) -> None:
    """Refuse weights and a sidecar that were not written together (their weights ids differ); the
    sidecar must record one when ``required`` (format 2)."""
    if required and not isinstance(weights_id, str):
        raise FileFormatError(
            f"sidecar {sidecar_path(path)} is not valid: field {WEIGHTS_ID}: missing or not a string"
        )
    if header.get(WEIGHTS_ID) != weights_id:
        raise FileFormatError(
            f"{path} and {sidecar_path(path)} were not written together (weights id "
            f"{header.get(WEIGHTS_ID)} in the weights, {weights_id} in the sidecar): an interrupted save or "
            "a file replaced by hand; write both again"
        )


def meta_model(architecture: dict, path: Path) -> VisionTransformer:
    """The model ``architecture`` describes, on the meta device (no memory, no weights), or FileFormatError
    naming the sidecar when timm cannot build it."""
    try:
        with torch.device("meta"):
            return build_vit({**architecture, "weight_init": "skip"})
    except Exception as error:  # whatever timm raises for keyword values it cannot build a model from
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FileFormatError(
            f"{sidecar_path(path)}: field architecture does not describe a buildable ViT: {reason}"
        ) from error


def check_shapes(
    path: Path,
    found: dict[str, tuple[int, ...]],
    expected: dict[str, tuple[int, ...]],
    required: set[str] | None = None,
) -> None:
    """Refuse tensors of ``path`` that are missing (of ``required``, default all), not expected, or of
    another shape than the sidecar's field architecture gives."""
    missing = sorted((expected.keys() if required is None else required) - found.keys())
    extra = sorted(found.keys() - expected.keys())
    side = sidecar_path(path).name
    if missing:
        raise FileFormatError(
            f"{path}: tensor {missing[0]!r}{_more(missing)} is missing, though field architecture of "
            f"{side} has it"
        )
    if extra:
        raise FileFormatError(
            f"{path}: tensor {extra[0]!r}{_more(extra)} is not part of the model that field architecture "
            f"of {side} describes"
        )
    for name, shape in found.items():
        if shape != expected[name]:
            raise FileFormatError(
                f"{path}: tensor {name!r} has shape {list(shape)}, but field architecture of "
                f"{side} gives {list(expected[name])}"
            )


def _more(names: list[str]) -> str:
    return f" (and {len(names) - 1} more)" if len(names) > 1 else ""


def check_outputs_finite(model: VisionTransformer, refusing: str) -> None:
    """Refuse (OutputError starting with ``refusing``, e.g. ``refusing to write m.safetensors``) a model
    whose tokens or logits on two probe images (black, and seeded noise) hold NaN or Inf: finite weights
    can still be too large to compute with."""
    reference = next(model.parameters())
    size = image_size(model)
    noise = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    probe = torch.cat([torch.zeros_like(noise), noise]).to(device=reference.device, dtype=reference.dtype)
    training = model.training
    try:
        with torch.no_grad():
            tokens = model.eval().forward_features(probe)
            logits = model.forward_head(tokens)
    finally:
        model.train(training)
    if not (torch.isfinite(tokens).all() and torch.isfinite(logits).all()):
        raise OutputError(
            f"{refusing}: the model's outputs on a probe image hold NaN or Inf (its weights are finite "
            "but too large, e.g. a vector added with a huge λ)"
        )


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``path`` (safetensors) and its sidecar as one unit (``write_with_sidecar``); the tensors, and
    the model's outputs on probe images, are checked to be finite first."""
    path, model, meta = Path(path), checkpoint.model, checkpoint.meta
    if path.suffix != ".safetensors":
        raise OutputError(f"checkpoint path {path} should end in .safetensors")
    if meta.class_names and len(meta.class_names) != model.num_classes:
        raise ValueError(f"{len(meta.class_names)} class names for a model with {model.num_classes} outputs")
    if kind_of(adapter_field(model)) != kind_of(meta.architecture.get("explain_adapter")):
        meta = meta.model_copy(
            update={"architecture": {**meta.architecture, "explain_adapter": adapter_field(model)}}
        )
    state = model.state_dict()
    require_finite(path, state)  # NaN or Inf in the weights is named before the outputs are tried
    check_outputs_finite(model, f"refusing to write {path}")
    return write_with_sidecar(path, state, meta.model_copy(update={"format": FORMAT}).dump())


def validated_meta(path: Path, data: dict) -> CheckpointMeta:
    """``data`` (the sidecar of ``path``) as a CheckpointMeta, or FileFormatError naming file and field."""
    try:
        return CheckpointMeta.model_validate(data)
    except ValidationError as error:
        raise FileFormatError(
            f"checkpoint sidecar {sidecar_path(path)} is not valid: {one_error(error)}"
        ) from error


def load_meta(path: str | Path) -> CheckpointMeta:
    """Read and validate a checkpoint's sidecar (its schema only; ``load_checkpoint`` checks the rest)."""
    return validated_meta(Path(path), read_sidecar(Path(path), "checkpoint")[0])


def load_checkpoint(path: str | Path, device: str = "cpu") -> Checkpoint:
    """Rebuild the model of a checkpoint from its sidecar and load its weights (in eval mode).

    The pair is validated as a whole before any model is built: the sidecar's schema and format, every
    tensor against the architecture (none missing, extra or of another shape), the class names against
    the head, the input size against the preprocessing, NaN or Inf in the weights, and the weights id.
    Each failure is a FileFormatError naming the file and the field or tensor."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    data, weights_id = read_sidecar(path, "checkpoint")
    meta = validated_meta(path, data)
    shapes, header = read_header(path)
    skeleton = meta_model(meta.architecture, path)
    check_shapes(path, shapes, {name: tuple(t.shape) for name, t in skeleton.state_dict().items()})
    side = sidecar_path(path)
    if len(meta.class_names) != skeleton.num_classes:
        raise FileFormatError(
            f"{side}: field class_names has {len(meta.class_names)} names for a head with "
            f"{skeleton.num_classes} outputs"
        )
    if meta.preprocess.image_size != image_size(skeleton):
        raise FileFormatError(
            f"{side}: field preprocess.image_size is {meta.preprocess.image_size}, but the model takes "
            f"{image_size(skeleton)}×{image_size(skeleton)} images"
        )
    tensors = read_tensors(path, device)
    check_pair(path, weights_id, header, required=meta.format == FORMAT)
    model = build_vit({**meta.architecture, "weight_init": "skip"})  # every weight is loaded next
    model.load_state_dict(tensors)
    return Checkpoint(model.to(device).eval(), meta)
