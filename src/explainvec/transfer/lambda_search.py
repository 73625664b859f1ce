"""Choosing λ on unlabelled target images: the best-scoring map among the λ that keep the predictions.

A criterion scores the edited model's own map at one λ, higher is better (``LAMBDA_CRITERIA``):

- ``shapley_fit`` (default): how well the additive map predicts the *unedited* target's outputs on a
  bank of paired Shapley-kernel coalitions, ``v(∅) + Σ_{j∈S} φ_j ≈ v(S)``: the Kernel SHAP objective, so
  the best map is the one closest to the target's Shapley values. The bank is drawn and evaluated once;
  each λ then costs one single pass of the edited model.
- ``insertion_deletion``: insertion − deletion AUC of the edited model's map on its own game, ``2(P + 1)``
  masked evaluations per image at every λ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
from timm.models.vision_transformer import VisionTransformer

from explainvec.evaluation.metrics import insertion_deletion_auc
from explainvec.models.self_explaining import Explanation, SelfExplainingViT
from explainvec.progress import SILENT, Tracker
from explainvec.shapley.model_games import MaskedModelGame
from explainvec.shapley.sampling import sample_kernel_coalitions
from explainvec.vectors.explainability_vector import ExplainabilityVector
from explainvec.vocabulary import DEFAULT_LAMBDA_CRITERION, DEFAULT_READOUT, LambdaCriterion, Readout

DEFAULT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
BANK_COALITIONS = 32
"""Paired Shapley-kernel coalitions per image in ``shapley_fit``'s bank (evaluated once, as 16 pairs)."""


@dataclass
class LambdaPoint:
    """One λ on the curve: agreement with the unedited model and the criterion's ``score`` (higher is
    better; no labels used), with the criterion's own numbers in ``details``."""

    lam: float
    agreement: float
    score: float
    details: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {"lam": self.lam, "agreement": self.agreement, "score": self.score, **self.details}


class Criterion(Protocol):
    """Scores the edited model's map: built once on the unedited model, then called at each λ."""

    def __call__(self, model: VisionTransformer, out: Explanation) -> tuple[float, dict[str, float]]: ...


class ShapleyFit:
    """R² of ``v(S) − v(∅) ≈ Σ_{j∈S} φ_j`` over a bank of ``coalitions`` paired Shapley-kernel coalitions
    per image, ``v`` the unedited target's read-out of its predicted class, ``φ`` the edited map of that
    class (1 − residual / spread of ``v(S)`` within each image; ``fit_mse`` is the mean squared residual)."""

    def __init__(
        self,
        model: VisionTransformer,
        images: torch.Tensor,
        classes: torch.Tensor,
        *,
        readout: Readout = DEFAULT_READOUT,
        coalitions: int = BANK_COALITIONS,
        seed: int = 0,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        game = MaskedModelGame(model, images, readout)
        masks = sample_kernel_coalitions(len(images), game.num_players, coalitions, generator=generator)
        self.masks, self.classes = masks.to(images.device), classes
        empty = SelfExplainingViT(model, [], readout).empty_value()[classes]
        values = game(self.masks).gather(2, classes[:, None, None].expand(-1, coalitions, 1))[..., 0]
        self.targets = values - empty[:, None]
        self.spread = (self.targets - self.targets.mean(1, keepdim=True)).pow(2).sum().clamp_min(1e-12)

    def __call__(self, model: VisionTransformer, out: Explanation) -> tuple[float, dict[str, float]]:
        predicted = torch.bmm(self.masks.to(out.attributions.dtype), out.for_class(self.classes)[..., None])
        residual = (predicted[..., 0] - self.targets).pow(2)
        return 1 - (residual.sum() / self.spread).item(), {"fit_mse": residual.mean().item()}


class InsertionDeletion:
    """Insertion − deletion AUC of the edited map (its predicted class) on the edited model's own
    probability game."""

    def __init__(self, model: VisionTransformer, images: torch.Tensor, classes: torch.Tensor, **_) -> None:
        self.images = images

    def __call__(self, model: VisionTransformer, out: Explanation) -> tuple[float, dict[str, float]]:
        game = MaskedModelGame(model, self.images)
        insertion, deletion = insertion_deletion_auc(game, out.for_class(), out.predicted)
        insertion, deletion = insertion.mean().item(), deletion.mean().item()
        return insertion - deletion, {
            "insertion": insertion,
            "deletion": deletion,
            "insertion_minus_deletion": insertion - deletion,
        }


LAMBDA_CRITERIA: dict[LambdaCriterion, type[ShapleyFit] | type[InsertionDeletion]] = {
    "shapley_fit": ShapleyFit,
    "insertion_deletion": InsertionDeletion,
}


@torch.no_grad()
def lambda_curve(
    model: VisionTransformer,
    tau: ExplainabilityVector,
    images: torch.Tensor,
    *,
    readout: Readout = DEFAULT_READOUT,
    grid: tuple[float, ...] = DEFAULT_GRID,
    criterion: LambdaCriterion = DEFAULT_LAMBDA_CRITERION,
    coalitions: int = BANK_COALITIONS,
    device: str | torch.device = "cpu",
    progress: Tracker = SILENT,
) -> list[LambdaPoint]:
    """Agreement and the ``criterion``'s score of ``model + λ·τ``'s map for each λ in ``grid``, computed on
    ``device`` (``model`` is moved there and edited in place, then restored exactly). What does not depend
    on λ (the unedited predictions, ``shapley_fit``'s bank of ``coalitions`` per image) runs once."""
    if criterion not in LAMBDA_CRITERIA:
        raise ValueError(f"unknown λ criterion {criterion!r}; known: {', '.join(LAMBDA_CRITERIA)}")
    model, images = model.to(device).eval(), images.to(device)
    reference = model(images).argmax(-1)
    score = LAMBDA_CRITERIA[criterion](model, images, reference, readout=readout, coalitions=coalitions)
    task = progress.task("choosing λ", total=len(grid))
    points = []
    explainer = SelfExplainingViT(model, [str(c) for c in range(model.num_classes)], readout)
    with tau.edit(model) as edit:
        for lam in grid:
            edit.set(lam)
            out = explainer(images)
            agreement = (out.predicted == reference).float().mean().item()
            points.append(LambdaPoint(lam, agreement, *score(model, out)))
            task.advance()
    return points


def choose_lambda(points: list[LambdaPoint], min_agreement: float = 0.99) -> LambdaPoint:
    """The point with the best score among those with agreement ≥ ``min_agreement``; if none keeps the
    predictions, the one with the smallest |λ|."""
    allowed = [p for p in points if p.agreement >= min_agreement] or [min(points, key=lambda p: abs(p.lam))]
    return max(allowed, key=lambda p: p.score)
