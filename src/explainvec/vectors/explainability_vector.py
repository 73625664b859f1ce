"""The explainability vector τ = θ_explain − θ_predict: backbone weights only, a value you compute with."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, ValidationError
from timm.models.vision_transformer import VisionTransformer

from explainvec.errors import FileFormatError
from explainvec.io import read_header, read_tensors
from explainvec.models.adapter import adapter_kind, identity_adapter_parameters, kind_of
from explainvec.models.checkpoint import (
    Checkpoint,
    check_pair,
    check_shapes,
    meta_model,
    read_sidecar,
    sidecar_path,
    write_with_sidecar,
)
from explainvec.models.records import Architecture, ExplanationRecord, Record, one_error
from explainvec.models.vit import build_vit, grid_size
from explainvec.vectors.edit import Scale, VectorEdit, add_scaled, block_of

HEAD_PREFIXES = ("head.", "fc_norm.", "head_drop.")
FORMAT = "explainvec-vector/2"
"""Format 2 adds the weights id (as checkpoints do); format 1 files are read as before."""


def backbone_parameters(model: VisionTransformer) -> dict[str, torch.Tensor]:
    """Named parameters of the backbone (the classifier head excluded; buffers are not parameters)."""
    return {n: p.detach() for n, p in model.named_parameters() if not n.startswith(HEAD_PREFIXES)}


def architecture_key(architecture: dict) -> dict:
    """The architecture fields a vector must match (the head's size and the adapter may differ)."""
    return {k: v for k, v in architecture.items() if k not in ("num_classes", "explain_adapter")}


def architecture_grid(architecture: dict) -> tuple[int, int]:
    """Rows and columns of the patch grid of ``architecture`` (built on the meta device: no memory)."""
    with torch.device("meta"):
        return grid_size(build_vit(architecture))


class VectorMeta(Record):
    """What a vector's sidecar holds: the base and architecture it fits, its source data, the recipe."""

    format: Literal["explainvec-vector/1", "explainvec-vector/2"] = FORMAT
    base_fingerprint: str
    architecture: Architecture
    source_data: str | list[str] | None = None
    explanation: ExplanationRecord = Field(default_factory=ExplanationRecord)
    training: dict[str, Any] = Field(default_factory=dict)
    combined: bool | None = None
    control: str | None = None
    norm: float | None = None
    block_norms: dict[str, float] | None = None

    @classmethod
    def of_base(cls, base: Checkpoint, **fields: Any) -> VectorMeta:
        """The metadata of a vector made from fine-tunes of ``base``."""
        architecture = architecture_key(base.meta.architecture)
        return cls(base_fingerprint=base.meta.base_fingerprint, architecture=architecture, **fields)


class ExplainabilityVector:
    """Backbone weight differences plus metadata; supports ``+ - *``, ``sum``, ``dot``, ``norm``, apply."""

    def __init__(self, tensors: dict[str, torch.Tensor], meta: VectorMeta) -> None:
        self.tensors, self.meta = tensors, meta

    @classmethod
    def from_checkpoints(cls, explain: Checkpoint, predict: Checkpoint) -> ExplainabilityVector:
        """τ = explain − predict, both fine-tuned from the same base."""
        if explain.meta.base_fingerprint != predict.meta.base_fingerprint:
            raise ValueError("the two checkpoints come from different bases (fingerprints differ)")
        if architecture_key(explain.meta.architecture) != architecture_key(predict.meta.architecture):
            raise ValueError("the two checkpoints have different architectures")
        a, b = backbone_parameters(explain.model), backbone_parameters(predict.model)
        kind = adapter_kind(explain.model)
        if kind:  # the prediction-only model has none: τ's entries are relative to the identity one
            b = {**identity_adapter_parameters(predict.model, kind), **b}
        tensors = {name: (a[name] - b[name]).clone() for name in a}
        meta = VectorMeta.of_base(
            explain,
            source_data=explain.meta.training.data,
            explanation=explain.meta.explanation,
            training=explain.meta.training.config,
        )
        return cls(tensors, meta)

    # -- algebra -------------------------------------------------------------------------------------
    def _combine(self, other: ExplainabilityVector, sign: float) -> ExplainabilityVector:
        if not isinstance(other, ExplainabilityVector):
            return NotImplemented
        if (
            other.tensors.keys() != self.tensors.keys()
            or other.meta.base_fingerprint != self.meta.base_fingerprint
        ):
            raise ValueError("vectors of different architectures or bases cannot be combined")
        tensors = {n: t + sign * other.tensors[n] for n, t in self.tensors.items()}
        return ExplainabilityVector(tensors, self.meta.model_copy(update={"combined": True}))

    def __add__(self, other: ExplainabilityVector) -> ExplainabilityVector:
        return self._combine(other, 1.0)

    def __radd__(self, other: object) -> ExplainabilityVector:
        if isinstance(other, int) and other == 0:  # lets sum([...]) start from 0
            return self
        return self.__add__(other)  # type: ignore[arg-type]

    def __sub__(self, other: ExplainabilityVector) -> ExplainabilityVector:
        return self._combine(other, -1.0)

    def __mul__(self, scale: float) -> ExplainabilityVector:
        return ExplainabilityVector(
            {n: t * float(scale) for n, t in self.tensors.items()}, self.meta.model_copy()
        )

    __rmul__ = __mul__

    def __neg__(self) -> ExplainabilityVector:
        return self * -1.0

    def dot(self, other: ExplainabilityVector) -> float:
        """Inner product over all entries."""
        return float(sum((t.double() * other.tensors[n].double()).sum() for n, t in self.tensors.items()))

    def norm(self) -> float:
        """Euclidean norm over all entries."""
        return self.dot(self) ** 0.5

    def block_norms(self) -> dict[str, float]:
        """Norm per block (``patch_embed``, ``blocks.0`` …, ``norm``)."""
        squares: dict[str, float] = {}
        for name, t in self.tensors.items():
            squares[block_of(name)] = squares.get(block_of(name), 0.0) + float(t.double().pow(2).sum())
        return {k: v**0.5 for k, v in squares.items()}

    # -- use -----------------------------------------------------------------------------------------
    def check_compatible(self, checkpoint: Checkpoint, *, force: bool = False) -> None:
        """Raise ValueError saying why the vector cannot be applied to ``checkpoint``: another patch grid,
        another architecture, or (unless ``force``) another base fingerprint."""
        architecture, own = architecture_key(checkpoint.meta.architecture), self.meta.architecture
        made_for, has = architecture_grid(own), grid_size(checkpoint.model)
        if made_for != has:
            raise ValueError(
                f"the vector was made for a {made_for[0]}x{made_for[1]} patch grid, the model has "
                f"{has[0]}x{has[1]} "
                "(another patch grid; --force does not override this)"
            )
        if architecture != own:
            differing = sorted(
                k for k in architecture.keys() | own.keys() if architecture.get(k) != own.get(k)
            )
            raise ValueError(
                f"the vector was made for another architecture (differs in: {', '.join(differing)}; "
                "--force does not override this)"
            )
        if checkpoint.meta.base_fingerprint != self.meta.base_fingerprint and not force:
            raise ValueError(
                f"the vector was made from base {self.meta.base_fingerprint}, the model from base "
                f"{checkpoint.meta.base_fingerprint} (another base fingerprint; use --force to apply anyway)"
            )

    def apply_to(self, model: VisionTransformer, lam: Scale = 1.0) -> VisionTransformer:
        """A copy of ``model`` with ``θ + λ·τ``; ``lam`` may map blocks (see ``block_of``) to their own λ."""
        edited = copy.deepcopy(model)
        add_scaled(edited, self.tensors, lam)
        return edited

    def edit(self, model: VisionTransformer) -> VectorEdit:
        """Edit ``model`` in place: ``with tau.edit(model) as edit: edit.set(0.5)``; restored on exit."""
        return VectorEdit(model, self.tensors)

    # -- files ---------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``path`` (safetensors) and its JSON sidecar with metadata and per-block norms, as one unit
        (see ``write_with_sidecar``); tensors holding NaN or Inf are refused."""
        meta = self.meta.model_copy(
            update={"format": FORMAT, "norm": self.norm(), "block_norms": self.block_norms()}
        )
        return write_with_sidecar(Path(path), self.tensors, meta.dump())

    @classmethod
    def load(cls, path: str | Path) -> ExplainabilityVector:
        """Read a vector and its sidecar, validated as a whole (FileFormatError naming the file and the
        field or tensor): the sidecar's schema and format, every tensor a backbone or adapter parameter of
        its architecture with that parameter's shape, none missing, no NaN or Inf, and the weights id."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"vector {path} does not exist")
        data, weights_id = read_sidecar(path, "vector")
        side = sidecar_path(path)
        if not str(data.get("format", "")).startswith("explainvec-vector/"):
            raise FileFormatError(
                f"{path} is not an explainability vector (sidecar format is not {FORMAT!r})"
            )
        try:
            meta = VectorMeta.model_validate(data)
        except ValidationError as error:
            raise FileFormatError(f"vector sidecar {side} is not valid: {one_error(error)}") from error
        shapes, header = read_header(path)
        check_shapes(path, shapes, *vector_shapes(meta, path))
        tensors = read_tensors(path)
        check_pair(path, weights_id, header, required=meta.format == FORMAT)
        return cls(tensors, meta)


def vector_shapes(meta: VectorMeta, path: Path) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """The tensors a vector of ``meta`` may hold (backbone and adapter parameters of its architecture, with
    their shapes) and those it must hold: the backbone unless it was trained adapter-only, the adapter when
    the sidecar says it has one."""
    model = meta_model(meta.architecture, path)
    backbone = {name: tuple(t.shape) for name, t in backbone_parameters(model).items()}
    kind = kind_of(meta.explanation.adapter)
    adapter = {n: tuple(t.shape) for n, t in identity_adapter_parameters(model, kind).items()} if kind else {}
    required = set(adapter) | (set() if meta.explanation.backbone is False else set(backbone))
    return {**backbone, **adapter}, required
