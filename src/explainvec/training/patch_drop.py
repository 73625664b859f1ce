"""Random patch dropping, the augmentation that teaches a ViT to read partial images."""

from __future__ import annotations

import torch


def random_keep_masks(
    batch: int, num_patches: int, keep_min: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Keep-masks ``[batch, P]``: each row keeps a share drawn uniformly from ``[keep_min, 1]``."""
    share = keep_min + (1 - keep_min) * torch.rand(batch, 1, generator=generator)
    kept = torch.clamp((share * num_patches).round(), min=1)
    ranks = torch.rand(batch, num_patches, generator=generator).argsort(dim=1).argsort(dim=1)
    return ranks < kept
