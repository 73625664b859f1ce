"""Exact Shapley values by enumerating every coalition."""

from __future__ import annotations

import math

import torch

from .game import Game, evaluate_in_chunks
from .values import ShapleyValues

MAX_EXACT_PLAYERS = 16


def all_coalitions(num_players: int, device: torch.device | str | None = None) -> torch.Tensor:
    """All ``2**P`` coalitions as a bool tensor ``[2**P, P]``; row i holds player j iff bit j of i is set."""
    index = torch.arange(1 << num_players, device=device)
    return (index[:, None] >> torch.arange(num_players, device=device)) & 1 == 1


def shapley_weight_matrix(coalitions: torch.Tensor) -> torch.Tensor:
    """Float64 ``[N, P]`` weights W with φ = Wᵀ v: W[S, j] = w(|S|−1) if j ∈ S else −w(|S|).

    Here w(s) = s! (P−1−s)! / P! is the Shapley weight of a coalition of size s not containing j.
    """
    num_players = coalitions.shape[1]
    weight_of_size = torch.tensor(
        [1.0 / (num_players * math.comb(num_players - 1, s)) for s in range(num_players)] + [0.0],
        dtype=torch.float64,
        device=coalitions.device,
    )
    size = coalitions.sum(-1, keepdim=True)
    return torch.where(coalitions, weight_of_size[(size - 1).clamp(min=0)], -weight_of_size[size])


def exact_shapley(
    game: Game, *, chunk_size: int = 4096, device: torch.device | str | None = None
) -> ShapleyValues:
    """Exact Shapley values φ_j = Σ_{S∌j} w(|S|) (v(S∪{j}) − v(S)) from all 2**P coalitions (P ≤ 16).

    Coalitions are built on ``device`` and evaluated ``chunk_size`` at a time; results are accumulated in
    float64 and returned in the game's dtype (at least float32).
    """
    num_players, num_inputs = game.num_players, game.num_inputs
    if not 1 <= num_players <= MAX_EXACT_PLAYERS:
        raise ValueError(
            f"exact_shapley enumerates all 2**P coalitions, which is only feasible for "
            f"1 <= P <= {MAX_EXACT_PLAYERS}; got P={num_players} (use kernel_shap or permutation_shapley)"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    coalitions = all_coalitions(num_players, device)
    weights = shapley_weight_matrix(coalitions)
    values = first = last = None
    for start in range(0, coalitions.shape[0], chunk_size):
        chunk = coalitions[start : start + chunk_size]
        last = evaluate_in_chunks(game, chunk.expand(num_inputs, -1, -1), chunk_size)
        first = last if first is None else first
        part = torch.einsum("bnc,np->bpc", last.double(), weights[start : start + chunk_size].to(last.device))
        values = part if values is None else values + part
    dtype = torch.promote_types(last.dtype, torch.float32)
    return ShapleyValues(
        values=values.to(dtype),
        std_errors=None,
        evaluations=coalitions.shape[0],
        base=first[:, 0].to(dtype),
        full=last[:, -1].to(dtype),
    )
