"""The product's headline operation: a target model plus λ·τ, with λ chosen on unlabelled target images."""

from __future__ import annotations

from typing import Literal

import torch

from explainvec.models.checkpoint import Checkpoint
from explainvec.models.self_explaining import readout_of
from explainvec.progress import SILENT, Tracker
from explainvec.transfer.lambda_search import DEFAULT_GRID, choose_lambda, lambda_curve
from explainvec.vectors.edit import Scale
from explainvec.vectors.explainability_vector import ExplainabilityVector
from explainvec.vocabulary import DEFAULT_LAMBDA_CRITERION, LambdaCriterion

LAMBDA_IMAGES = 128
"""How many unlabelled target val images choose λ by default."""


def apply_vector(
    target: Checkpoint,
    tau: ExplainabilityVector,
    lam: Scale | Literal["auto"] = 1.0,
    *,
    data: str | torch.Tensor | None = None,
    images: int = LAMBDA_IMAGES,
    agreement: float = 0.99,
    grid: tuple[float, ...] = DEFAULT_GRID,
    criterion: LambdaCriterion = DEFAULT_LAMBDA_CRITERION,
    force: bool = False,
    device: str | torch.device = "cpu",
    progress: Tracker = SILENT,
) -> Checkpoint:
    """``target + λ·τ`` as a checkpoint of kind ``edited`` that explains itself in one pass.

    ``lam="auto"`` chooses λ from ``grid`` without labels: the edited model's own map that scores best by
    ``criterion`` (see :mod:`explainvec.transfer.lambda_search`) among the λ whose top-1 agreement with
    ``target`` is ≥ ``agreement``, on ``data`` (a data spec whose first ``images`` val images are used, or
    a batch of preprocessed images). The curve is recorded in the result's ``explanation.lambda_curve``
    (and the criterion in ``explanation.lambda_criterion``). Compatibility is checked first
    (``force`` allows another base, never another architecture or patch grid). ``target`` is left as it
    was (the search edits it in place and restores it)."""
    tau.check_compatible(target, force=force)
    explanation = tau.meta.explanation.model_copy(update={"vector_source": tau.meta.source_data})
    meta = target.meta.model_copy(update={"kind": "edited", "explanation": explanation})
    if lam == "auto":
        if data is None:
            raise ValueError("λ = auto needs data (unlabelled target images to choose λ on)")
        batch = data if isinstance(data, torch.Tensor) else target.split_images(data, "val", images)
        readout = readout_of(Checkpoint(target.model, meta))
        curve = lambda_curve(
            target.model,
            tau,
            batch,
            readout=readout,
            grid=grid,
            criterion=criterion,
            device=device,
            progress=progress,
        )
        lam = choose_lambda(curve, agreement).lam
        explanation.lambda_curve = [p.as_dict() for p in curve]
        explanation.lambda_criterion = criterion
    explanation.lam = lam
    return Checkpoint(tau.apply_to(target.model.cpu(), lam), meta)
