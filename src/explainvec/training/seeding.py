"""Random draws seeded per (seed, epoch, item): independent of batch splits across processes and resumes."""

from __future__ import annotations

import torch


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The generator of one item's random draws (patch dropping, coalitions) in one epoch."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 10_000_019 + index)


def epoch_order(size: int, seed: int, epoch: int) -> torch.Tensor:
    """The order in which one epoch visits ``size`` items."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
