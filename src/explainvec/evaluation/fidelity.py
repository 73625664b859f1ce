"""Fidelity of attribution maps to reference Shapley values."""

from __future__ import annotations

import torch


def pearson(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per row of two ``[B, P]`` maps (↑, in [−1, 1]; 0 for a constant row)."""
    a = estimate - estimate.mean(-1, keepdim=True)
    b = reference - reference.mean(-1, keepdim=True)
    denominator = (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)
    return (a * b).sum(-1) / denominator
