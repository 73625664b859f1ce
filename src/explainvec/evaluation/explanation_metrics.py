"""The explanation columns of a report row, for any way of producing a map."""

from __future__ import annotations

from collections.abc import Callable

import torch

from explainvec.evaluation.fidelity import pearson
from explainvec.evaluation.insertion_deletion import insertion_deletion_auc
from explainvec.models.self_explaining import Explanation, SelfExplainingViT
from explainvec.shapley.kernel_shap import kernel_shap
from explainvec.shapley.model_games import MaskedModelGame

Attributor = Callable[[SelfExplainingViT, torch.Tensor, Explanation], torch.Tensor]
"""``(model, images, single-pass output) -> attributions [B, P]`` of the predicted classes: a way to
explain, e.g. Kernel SHAP at a budget. The single-pass output is computed once and shared."""


def single_pass(model: SelfExplainingViT, images: torch.Tensor, out: Explanation) -> torch.Tensor:
    """The model's own one-forward-pass map."""
    return out.for_class()


def kernel_shap_attributor(budget: int, seed: int = 1) -> Attributor:
    """Kernel SHAP with ``budget`` evaluations of the model's own read-out game."""

    def attribute(model: SelfExplainingViT, images: torch.Tensor, out: Explanation) -> torch.Tensor:
        game = MaskedModelGame(model.vit, images, model.readout)
        values = kernel_shap(game, budget, generator=torch.Generator().manual_seed(seed)).values
        return values[torch.arange(len(images)), :, out.predicted]

    return attribute


def explanation_metrics(
    model: SelfExplainingViT,
    images: torch.Tensor,
    attributor: Attributor = single_pass,
    *,
    reference_budget: int = 2048,
) -> dict[str, float]:
    """Insertion/deletion AUC (probabilities, attention masking) and Pearson with Kernel SHAP at
    ``reference_budget`` of the model's read-out game, for the predicted class, averaged over images."""
    with torch.no_grad():
        out = model(images)
    attributions = attributor(model, images, out)
    reference = kernel_shap_attributor(reference_budget, seed=0)(model, images, out)
    insertion, deletion = insertion_deletion_auc(model.vit, images, attributions, out.predicted)
    return {
        "insertion_auc": insertion.mean().item(),
        "deletion_auc": deletion.mean().item(),
        "shapley_pearson": pearson(attributions, reference).mean().item(),
    }
