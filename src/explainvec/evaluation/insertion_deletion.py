"""Insertion and deletion curves over patches, by attention masking.

Patches are ranked by attribution (highest first). Insertion keeps the top ``k`` patches, deletion
removes them, for ``k = 0 … P``; each curve is the model's probability of the explained class, and
its AUC is the trapezoid area over ``k / P`` in ``[0, 1]``. Insertion AUC: higher is better;
deletion AUC: lower is better.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer

from explainvec.shapley.model_games import MaskedModelGame


def insertion_deletion_curves(
    model: VisionTransformer, images: torch.Tensor, attributions: torch.Tensor, classes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Insertion and deletion curves ``[B, P + 1]`` for ``attributions [B, P]`` of ``classes [B]``."""
    p = attributions.shape[1]
    ranks = attributions.argsort(dim=1, descending=True).argsort(dim=1)
    kept = ranks[:, None, :] < torch.arange(p + 1)[None, :, None]  # [B, P + 1, P]: top-k kept
    values = MaskedModelGame(model, images)(torch.cat([kept, ~kept], dim=1))
    chosen = values.gather(2, classes.to(values.device)[:, None, None].expand(-1, 2 * (p + 1), 1))[..., 0]
    return chosen[:, : p + 1], chosen[:, p + 1 :]


def curve_auc(curves: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under curves ``[B, P + 1]`` sampled at ``k / P``: ``[B]``."""
    return torch.trapezoid(curves, dx=1.0 / (curves.shape[1] - 1), dim=1)


def insertion_deletion_auc(
    model: VisionTransformer, images: torch.Tensor, attributions: torch.Tensor, classes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image insertion AUC (↑) and deletion AUC (↓)."""
    insertion, deletion = insertion_deletion_curves(model, images, attributions, classes)
    return curve_auc(insertion), curve_auc(deletion)
