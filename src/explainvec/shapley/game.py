"""Cooperative games over image patches: the protocol every Shapley estimator consumes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Game(Protocol):
    """A batch of ``num_inputs`` games with ``num_players`` players and C outputs each.

    ``game(masks)`` takes a bool tensor ``[B, M, P]`` (True = player kept; every input may have its own
    M coalitions, on any device) and returns the values ``[B, M, C]`` as a float tensor.
    """

    num_players: int
    num_inputs: int

    def __call__(self, masks: torch.Tensor) -> torch.Tensor: ...


class FunctionGame:
    """Adapts a plain callable ``fn(masks[B, M, P]) -> values[B, M, C]`` to the :class:`Game` protocol."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], num_players: int, num_inputs: int) -> None:
        self.fn = fn
        self.num_players = num_players
        self.num_inputs = num_inputs

    def __call__(self, masks: torch.Tensor) -> torch.Tensor:
        return self.fn(masks)


class TabularGame:
    """A game given by its full value table ``[B, 2**P, C]``; bit j of the row index is player j."""

    def __init__(self, table: torch.Tensor) -> None:
        if table.ndim != 3:
            raise ValueError(f"table must have shape [B, 2**P, C], got {tuple(table.shape)}")
        num_players = table.shape[1].bit_length() - 1
        if table.shape[1] != 1 << num_players:
            raise ValueError(f"table has {table.shape[1]} rows, which is not a power of two")
        self.table = table
        self.num_players = num_players
        self.num_inputs = table.shape[0]

    def __call__(self, masks: torch.Tensor) -> torch.Tensor:
        bits = 1 << torch.arange(self.num_players, device=masks.device)
        index = (masks.long() * bits).sum(-1).to(self.table.device)
        return torch.gather(self.table, 1, index[..., None].expand(-1, -1, self.table.shape[2]))


def evaluate_in_chunks(game: Game, masks: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """Evaluates ``game`` on ``masks [B, M, P]``, at most ``chunk_size`` coalitions per input per call."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    num_inputs, num_masks, num_players = masks.shape
    if (num_inputs, num_players) != (game.num_inputs, game.num_players):
        raise ValueError(
            f"masks of shape {tuple(masks.shape)} do not fit a game with {game.num_inputs} inputs "
            f"and {game.num_players} players"
        )
    chunks = []
    for start in range(0, num_masks, chunk_size):
        chunk = masks[:, start : start + chunk_size]
        values = game(chunk)
        if values.ndim != 3 or values.shape[:2] != chunk.shape[:2]:
            raise ValueError(
                f"game returned shape {tuple(values.shape)} for masks of shape {tuple(chunk.shape)}; "
                "expected [B, M, C]"
            )
        chunks.append(values)
    return torch.cat(chunks, dim=1)
