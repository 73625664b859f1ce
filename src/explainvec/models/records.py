"""Typed metadata records: what a checkpoint or vector sidecar says about how its model was made.

Each is a pydantic model that refuses unknown fields and wrong types, so a sidecar is validated whole
when it is read. On disk they keep the JSON shape they always had (``lambda`` included).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from explainvec.models.adapter import kind_of
from explainvec.vocabulary import Init, LambdaCriterion, Readout, Supervision


def _known_adapter(field: bool | str) -> bool | str:
    kind_of(field)  # a ValueError for a removed kind, in one line
    return field


AdapterField = Annotated[bool | str, AfterValidator(_known_adapter)]
"""An ``explain_adapter`` / ``adapter`` field: ``False`` or an adapter kind (a removed kind is refused
with what to do)."""


class Record(BaseModel):
    """A metadata record: unknown fields are refused; written with ``dump`` (no unset fields)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def dump(self) -> dict[str, Any]:
        """The record as JSON-ready data, as it is written in a sidecar."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ArchitectureFields(BaseModel):
    """The fields of an architecture (keyword arguments of timm's ``VisionTransformer`` or of a named timm
    model) that explainvec reads; any other timm keyword is passed on as it is. The upper bounds are far
    beyond any ViT; they keep a hostile sidecar from making the loader build a model for hours."""

    model_config = ConfigDict(extra="allow", strict=True)

    timm_model: str | None = None
    img_size: int | None = Field(default=None, gt=0, le=16384)
    patch_size: int | None = Field(default=None, gt=0, le=1024)
    embed_dim: int | None = Field(default=None, gt=0, le=65536)
    depth: int | None = Field(default=None, gt=0, le=1024)
    num_heads: int | None = Field(default=None, gt=0, le=1024)
    num_classes: int | None = Field(default=None, ge=0, le=1_000_000)
    explain_adapter: AdapterField = False


def _checked_architecture(architecture: dict[str, Any]) -> dict[str, Any]:
    ArchitectureFields.model_validate(architecture)
    return architecture


Architecture = Annotated[dict[str, Any], AfterValidator(_checked_architecture)]
"""An architecture: the keyword dict that ``build_vit`` takes, its known fields type-checked."""


class ExplanationRecord(Record):
    """How a model explains: the recipe that trained its map, and for an edited model the vector and λ."""

    readout: Readout | None = None
    supervision: Supervision | None = None
    alpha: float | None = None
    coalitions: int | None = None
    coalition_bank: bool | None = None
    """Amortised training: coalitions drawn and evaluated once per item (``False``: fresh every step)."""
    init: Init | None = None
    adapter: AdapterField | None = None
    backbone: bool | None = None
    recipe: Literal["shared"] | None = None
    game_data: str | None = None
    """Shared τ: the images every source model's game was played on (``None``: each source's own)."""
    value_model: str | None = None
    vector_source: str | list[str] | None = None
    lam: float | dict[str, float] | None = Field(default=None, alias="lambda")
    lambda_curve: list[dict[str, float]] | None = None
    lambda_criterion: LambdaCriterion | None = None
    """How the curve scored each λ (``None`` in files written before the choice: insertion − deletion)."""


class TrainingRecord(Record):
    """How a model's weights were made: trained here (mode, data, config, loss) or imported."""

    mode: Literal["pretrain", "predict", "explain"] | None = None
    data: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    loss: list[float] = Field(default_factory=list)
    source: str | None = None
    weights: str | None = None
    zero_shot_head: dict[str, Any] | None = None


def one_error(error: ValidationError) -> str:
    """The first problem of a pydantic validation error in one line: the field and what is wrong."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(the whole record)"
    return f"field {field}: {first['msg']}" + (
        f" ({len(error.errors())} problems)" if error.error_count() > 1 else ""
    )
