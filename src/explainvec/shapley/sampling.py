"""Coalition sampling from the Shapley kernel."""

from __future__ import annotations

import torch


def shapley_kernel_sizes(
    num_players: int, *, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> torch.Tensor:
    """Probabilities ``[P − 1]`` of coalition sizes k = 1..P−1 under the Shapley kernel, ∝ (P−1)/(k(P−k))."""
    if num_players < 2:
        raise ValueError(f"the Shapley kernel needs at least 2 players, got {num_players}")
    sizes = torch.arange(1, num_players, dtype=torch.float64)
    weights = (num_players - 1) / (sizes * (num_players - sizes))
    return (weights / weights.sum()).to(dtype=dtype, device=device)


def sample_kernel_coalitions(
    num_inputs: int,
    num_players: int,
    num_samples: int,
    *,
    paired: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draws coalitions ``[B, num_samples, P]`` (bool) with sizes from the Shapley kernel, members uniform.

    With ``paired`` the samples come as (S, complement of S) in adjacent positions 2i, 2i+1, so
    ``num_samples`` must be even. ``generator`` must live on ``device``.
    """
    if num_samples < 0:
        raise ValueError(f"num_samples must be non-negative, got {num_samples}")
    if paired and num_samples % 2:
        raise ValueError(f"paired sampling needs an even num_samples, got {num_samples}")
    num_draws = num_samples // 2 if paired else num_samples
    probs = shapley_kernel_sizes(num_players, device=device)
    if num_draws == 0:
        return torch.zeros(num_inputs, 0, num_players, dtype=torch.bool, device=device)
    sizes = torch.multinomial(
        probs.expand(num_inputs, -1), num_draws, replacement=True, generator=generator
    ).add_(1)
    order = torch.rand(num_inputs, num_draws, num_players, generator=generator, device=device).argsort(-1)
    keep_first = torch.arange(num_players, device=device) < sizes[..., None]
    masks = torch.empty_like(keep_first).scatter_(-1, order, keep_first)
    if paired:
        masks = torch.stack([masks, ~masks], dim=2).reshape(num_inputs, num_samples, num_players)
    return masks
