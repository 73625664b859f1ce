"""A study as a validated JSON file: the bases, the source and target, and the recipes (variants) of τ."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from explainvec.training.pretrain import PRETRAIN_DATA
from explainvec.vocabulary import DEFAULT_LAMBDA_CRITERION, AdapterKind, Init, LambdaCriterion, Supervision


class Variant(BaseModel):
    """One way of making τ."""

    model_config = ConfigDict(extra="forbid")

    name: str
    recipe: Literal["difference", "shared"] = "difference"
    """``difference``: τ = SEM − predict per source, summed; ``shared``: one τ trained on all sources."""
    sources: list[str] | None = None
    """Source domains (default: the study's ``source``)."""
    source_seeds: list[int] = Field(default=[0], min_length=1)
    """``shared`` recipe: fine-tuning seeds of each source's prediction model (one model per seed)."""
    with_base: bool = False
    """``shared`` recipe: the base itself is one more source model (on its pretraining data)."""
    adapter: AdapterKind | None = None
    """Add the class-agnostic explanation adapter of this kind (it travels in τ)."""
    backbone: bool = True
    """``shared`` recipe: train τ on the backbone too (else the adapter alone)."""
    game_data: str | None = None
    """``shared`` recipe, adapter alone: the images every source model's game is played on (a data spec;
    ``"pretraining"``: the base's pretraining data, the study's ``pretrain_data``); by default each
    source's own."""
    supervision: Supervision = "embedding"
    alpha: float = 0.05
    coalitions: int = 16
    init: Init = "base"
    freeze_head: bool = True
    lr: float = 3e-4
    epochs: int | None = None
    """Epochs of the self-explaining fine-tune (default: the study's ``predict_epochs``)."""
    keep_min: float = 1.0
    blocks: list[str] | None = None
    """Keep τ only on these groups (``blocks.3``, ``norm`` …); all when omitted."""


class Distance(BaseModel):
    """One target fine-tune further from or nearer to the base: its learning rate and epochs."""

    model_config = ConfigDict(extra="forbid")

    lr: float = Field(gt=0)
    epochs: int = Field(ge=1)


class Study(BaseModel):
    """Bases pretrained from ``bases`` seeds, target fine-tunes from ``target_seeds``: every recipe is
    measured on every (base, target seed) pair, on the same test images, beside the free baselines.

    The defaults are the hard regime: nothing trained with patch dropping (``*_keep_min`` 1)."""

    model_config = ConfigDict(extra="forbid")

    grid: str = Field(description="architecture preset (models.vit.GRID_PRESETS)")
    pretrain_data: str = PRETRAIN_DATA
    pretrain_epochs: int = Field(default=12, ge=1)
    pretrain_size: int = Field(default=8000, ge=1)
    bases: list[int] = Field(default=[0, 1, 2], min_length=1, description="pretraining seeds")
    target_seeds: list[int] = Field(default=[0, 1], min_length=1, description="target fine-tuning seeds")
    source: str = "synthetic:geo"
    target: str = "synthetic:glyphs"
    base_keep_min: float = Field(default=1.0, gt=0, le=1)
    predict_keep_min: float = Field(default=1.0, gt=0, le=1)
    predict_epochs: int = Field(default=4, ge=1)
    predict_lr: float = 5e-4
    train_size: int = Field(default=2000, ge=1)
    eval_size: int = Field(default=500, ge=1)
    fidelity_images: int = Field(default=64, ge=2)
    reference_budget: int = Field(default=2048, ge=4, description="Kernel SHAP budget of the reference")
    exact_reference: bool = Field(default=True, description="exact Shapley values as the reference at P ≤ 16")
    lambda_images: int = Field(default=128, ge=1, description="unlabelled target val images of the λ search")
    lambda_criterion: LambdaCriterion = DEFAULT_LAMBDA_CRITERION
    """How the label-free λ search scores each λ (``apply --lam-criterion``)."""
    baselines: list[str] = ["rollout", "direct_attribution", "integrated_gradients", "kernelshap150"]
    oracle_recipe: str | None = Field(
        default=None, description="variant trained on the target itself as the oracle (first target seed)"
    )
    variants: list[Variant] = Field(min_length=1)
    distances: list[Distance] = []
    distance_variants: list[str] | None = None
    """The variants measured at each distance (default: all)."""
    """Target fine-tunes at other distances from the base (first target seed, every base): insertion −
    deletion of every variant, λ = 0 and rollout on each, for the curve of transfer against distance."""
