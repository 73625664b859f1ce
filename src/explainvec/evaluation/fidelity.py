"""Fidelity of attribution maps to reference Shapley values."""

from __future__ import annotations

import torch

from explainvec.shapley.kernel_shap import kernel_shap
from explainvec.shapley.model_games import MaskedModelGame


def pearson(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per row of two ``[B, P]`` maps (↑, in [−1, 1]; 0 for a constant row)."""
    a = estimate - estimate.mean(-1, keepdim=True)
    b = reference - reference.mean(-1, keepdim=True)
    denominator = (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)
    return (a * b).sum(-1) / denominator


def shapley_pearson(model, images: torch.Tensor, *, budget: int = 2048, seed: int = 0) -> float:
    """Mean Pearson, over images, of a ``SelfExplainingViT``'s single-pass map for its predicted class
    with Kernel SHAP (``budget`` evaluations) of its own read-out game."""
    with torch.no_grad():
        out = model(images)
    game = MaskedModelGame(model.vit, images, model.readout)
    reference = kernel_shap(game, budget, generator=torch.Generator().manual_seed(seed)).values
    rows = torch.arange(len(images))
    return pearson(out.for_class(), reference[rows, :, out.predicted]).mean().item()
