"""Permutation sampling estimator of Shapley values."""

from __future__ import annotations

import torch

from .game import Game, evaluate_in_chunks
from .values import ShapleyValues


def permutation_shapley(
    game: Game,
    num_permutations: int,
    *,
    antithetic: bool = True,
    generator: torch.Generator | None = None,
    chunk_size: int = 1024,
    device: torch.device | str | None = None,
) -> ShapleyValues:
    """Averages marginal contributions v(pre_π(j) ∪ {j}) − v(pre_π(j)) over random permutations π.

    ``num_permutations`` counts every permutation used; with ``antithetic`` they come as (π, reversed π)
    pairs, so it must be even, and each pair is one draw for the standard errors (None with < 2 draws).
    v(∅) and v(all) are evaluated once and shared, so ``evaluations`` = 2 + num_permutations·(P − 1).
    Each permutation telescopes to v(all) − v(∅), so efficiency holds exactly.
    """
    num_players, num_inputs = game.num_players, game.num_inputs
    if num_players < 1:
        raise ValueError(f"permutation_shapley needs at least 1 player, got {num_players}")
    if num_permutations < 1:
        raise ValueError(f"num_permutations must be at least 1, got {num_permutations}")
    if antithetic and num_permutations % 2:
        raise ValueError(f"antithetic sampling needs an even num_permutations, got {num_permutations}")
    if device is None and generator is not None:
        device = generator.device
    num_random = num_permutations // 2 if antithetic else num_permutations
    noise = torch.rand(num_inputs, num_random, num_players, generator=generator, device=device)
    order = noise.argsort(-1)
    if antithetic:
        order = torch.stack([order, order.flip(-1)], dim=2).reshape(num_inputs, num_permutations, num_players)
    position = order.argsort(-1)
    prefix_sizes = torch.arange(1, num_players, device=position.device)
    prefixes = position[:, :, None, :] < prefix_sizes[:, None]
    ends = torch.zeros(num_inputs, 2, num_players, dtype=torch.bool, device=position.device)
    ends[:, 1] = True
    outputs = evaluate_in_chunks(game, torch.cat([ends, prefixes.flatten(1, 2)], dim=1), chunk_size)
    dtype = torch.promote_types(outputs.dtype, torch.float32)
    outputs = outputs.double()
    num_classes = outputs.shape[2]
    base = outputs[:, None, :1].expand(-1, num_permutations, -1, -1)
    full = outputs[:, None, 1:2].expand(-1, num_permutations, -1, -1)
    prefix_values = outputs[:, 2:].view(num_inputs, num_permutations, num_players - 1, num_classes)
    steps = torch.cat([base, prefix_values, full], dim=2).diff(dim=2)
    contributions = steps.gather(2, position.to(steps.device)[..., None].expand(-1, -1, -1, num_classes))
    draws = contributions.view(num_inputs, num_random, -1, num_players, num_classes).mean(dim=2)
    values = draws.mean(dim=1)
    std_errors = draws.std(dim=1) / num_random**0.5 if num_random > 1 else None
    return ShapleyValues(
        values=values.to(dtype),
        std_errors=None if std_errors is None else std_errors.to(dtype),
        evaluations=2 + num_permutations * (num_players - 1),
        base=outputs[:, 0].to(dtype),
        full=outputs[:, 1].to(dtype),
    )
