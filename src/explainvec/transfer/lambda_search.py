"""Choosing λ on unlabelled target images: best insertion − deletion while predictions stay put."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from timm.models.vision_transformer import VisionTransformer

from explainvec.evaluation.metrics import insertion_deletion_auc
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.progress import SILENT, Tracker
from explainvec.shapley.model_games import MaskedModelGame
from explainvec.vectors.explainability_vector import ExplainabilityVector
from explainvec.vocabulary import DEFAULT_READOUT, Readout

DEFAULT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


@dataclass
class LambdaPoint:
    """One λ on the curve: agreement with the unedited model and explanation quality (no labels used)."""

    lam: float
    agreement: float
    insertion: float
    deletion: float

    @property
    def score(self) -> float:
        return self.insertion - self.deletion

    def as_dict(self) -> dict:
        return {**asdict(self), "insertion_minus_deletion": self.score}


@torch.no_grad()
def lambda_curve(
    model: VisionTransformer,
    tau: ExplainabilityVector,
    images: torch.Tensor,
    *,
    readout: Readout = DEFAULT_READOUT,
    grid: tuple[float, ...] = DEFAULT_GRID,
    device: str | torch.device = "cpu",
    progress: Tracker = SILENT,
) -> list[LambdaPoint]:
    """Agreement and insertion/deletion AUC (predicted class) of ``model + λ·τ`` for each λ in ``grid``,
    computed on ``device`` (``model`` is moved there and edited in place, then restored exactly)."""
    model, images = model.to(device).eval(), images.to(device)
    reference = model(images).argmax(-1)
    task = progress.task("choosing λ", total=len(grid))
    points = []
    explainer = SelfExplainingViT(model, [str(c) for c in range(model.num_classes)], readout)
    with tau.edit(model) as edit:
        for lam in grid:
            edit.set(lam)
            out = explainer(images)
            insertion, deletion = insertion_deletion_auc(
                MaskedModelGame(model, images), out.for_class(), out.predicted
            )
            agreement = (out.predicted == reference).float().mean().item()
            points.append(LambdaPoint(lam, agreement, insertion.mean().item(), deletion.mean().item()))
            task.advance()
    return points


def choose_lambda(points: list[LambdaPoint], min_agreement: float = 0.99) -> LambdaPoint:
    """The point with the best insertion − deletion among those with agreement ≥ ``min_agreement``."""
    allowed = [p for p in points if p.agreement >= min_agreement] or [min(points, key=lambda p: abs(p.lam))]
    return max(allowed, key=lambda p: p.score)
