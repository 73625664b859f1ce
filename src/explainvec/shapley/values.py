"""Container for estimated Shapley values."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ShapleyValues:
    """Shapley values ``[B, P, C]`` of a batch of games, with v(∅) and v(all) as ``base``/``full`` ``[B, C]``.

    ``std_errors`` ``[B, P, C]`` is None for exact values (or when too few draws to estimate them);
    ``evaluations`` is the number of game evaluations per input, v(∅) and v(all) included.
    """

    values: torch.Tensor
    std_errors: torch.Tensor | None
    evaluations: int
    base: torch.Tensor
    full: torch.Tensor

    def efficiency_gap(self) -> float:
        """max over inputs and classes of |Σ_j φ_j − (v(all) − v(∅))|."""
        total = self.values.double().sum(dim=1)
        return (total - (self.full.double() - self.base.double())).abs().max().item()
