"""Our Shapley estimators against an independent implementation: shapiq's ``ExactComputer``.

Two small non-additive games: a random value table (interactions of every order) and a real masked
tiny ViT (the 4x4 preset, its 16 patches grouped into 8 players of two neighbouring patches). Exact
values must agree to 1e-5; Kernel SHAP and permutation sampling, with budgets far above the 2**8
coalitions, must lie within Z standard errors (their own estimates) of shapiq's exact values.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainvec.shapley import (
    Game,
    TabularGame,
    all_coalitions,
    exact_shapley,
    kernel_shap,
    permutation_shapley,
)
from explainvec.shapley.model_games import MaskedModelGame

EXACT_ATOL = 1e-5
Z = 5.0
"""Estimates must be within Z of their own standard errors (+ a float32 slack) of the exact values. The
errors are about normal (mean |error| / std error is 0.6-0.85 here, 0.8 for a normal), so P(|z| > 5) is
6e-7 per entry, about 1e-4 over the ~250 entries checked; the seeds are fixed, so the outcome is
deterministic anyway."""
SLACK = 1e-6


@pytest.fixture(scope="module")
def exact_computer():
    """shapiq's exact computer, imported lazily (shapiq's import takes a few seconds)."""
    shapiq = pytest.importorskip("shapiq")
    return shapiq.ExactComputer


class PatchPairs:
    """A ViT game with 8 players: player j keeps patches 2j and 2j + 1 (horizontal neighbours)."""

    def __init__(self, game: Game) -> None:
        if game.num_players % 2:
            raise ValueError("needs an even number of patches")
        self.game = game
        self.num_players = game.num_players // 2
        self.num_inputs = game.num_inputs

    def __call__(self, masks: torch.Tensor) -> torch.Tensor:
        return self.game(masks.repeat_interleave(2, dim=-1))


def shapiq_values(game: Game, exact_computer) -> tuple[torch.Tensor, torch.Tensor]:
    """shapiq's exact Shapley values ``[B, P, C]`` and v(∅) ``[B, C]`` of every input and output of
    ``game``, evaluated once on shapiq's own coalition matrix."""
    outputs: dict[str, np.ndarray] = {}

    def evaluate(coalitions: np.ndarray) -> np.ndarray:
        masks = torch.from_numpy(coalitions.astype(bool))[None].expand(game.num_inputs, -1, -1)
        outputs["values"] = game(masks).double().numpy()
        return outputs["values"][0, :, 0]

    first = exact_computer(evaluate, n_players=game.num_players)("SV")
    table = outputs["values"]  # [B, 2**P, C] in shapiq's coalition order
    num_inputs, _, num_outputs = table.shape
    phi = torch.zeros(num_inputs, game.num_players, num_outputs, dtype=torch.float64)
    base = torch.zeros(num_inputs, num_outputs, dtype=torch.float64)
    for b in range(num_inputs):
        for c in range(num_outputs):
            if (b, c) == (0, 0):
                sv = first
            else:
                column = table[b, :, c]
                sv = exact_computer(lambda coalitions, v=column: v, n_players=game.num_players)("SV")
            phi[b, :, c] = torch.tensor([sv[(j,)] for j in range(game.num_players)], dtype=torch.float64)
            base[b, c] = sv.baseline_value
    return phi, base


def random_table_game(num_players: int = 7, num_inputs: int = 2, num_outputs: int = 3) -> TabularGame:
    """Values of every coalition drawn at random: interactions of all orders, far from additive."""
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(num_inputs, 1 << num_players, num_outputs, generator=generator, dtype=torch.float64)
    return TabularGame(table)


def vit_game() -> PatchPairs:
    """Class probabilities of a random 4x4 tiny ViT on two random images, patches masked as keys."""
    from explainvec.models.vit import GRID_PRESETS, build_vit

    torch.manual_seed(0)
    vit = build_vit({**GRID_PRESETS["4x4"], "num_classes": 5}).eval()
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return PatchPairs(MaskedModelGame(vit, images, "probability"))


def tabulated(game: Game) -> TabularGame:
    """``game`` evaluated once on all coalitions (the samplers then cost no model calls)."""
    return TabularGame(game(all_coalitions(game.num_players).expand(game.num_inputs, -1, -1)))


@pytest.fixture(scope="module")
def cases(exact_computer) -> dict[str, tuple[Game, torch.Tensor, torch.Tensor]]:
    """name -> (game, shapiq's Shapley values [B, P, C], shapiq's v(∅) [B, C])."""
    games = {"random table": random_table_game(), "masked tiny ViT": vit_game()}
    return {name: (game, *shapiq_values(game, exact_computer)) for name, game in games.items()}


def assert_within_std_errors(estimate, reference: torch.Tensor, name: str) -> None:
    assert estimate.std_errors is not None
    error = (estimate.values.double() - reference).abs()
    bound = Z * estimate.std_errors.double() + SLACK
    worst = (error / bound).max().item()
    assert bool((error <= bound).all()), f"{name}: an error exceeds {Z} standard errors ({worst:.2f} x bound)"
    # The standard errors are not vacuous: small next to the values they bound.
    assert estimate.std_errors.max().item() < 0.1 * reference.abs().max().item()


GAMES = ["random table", "masked tiny ViT"]


@pytest.mark.parametrize("name", GAMES)
def test_exact_matches_shapiq(name, cases):
    game, reference, base = cases[name]
    ours = exact_shapley(game)  # the ViT game is evaluated afresh, in our own coalition order
    torch.testing.assert_close(ours.values.double(), reference, atol=EXACT_ATOL, rtol=0)
    torch.testing.assert_close(ours.base.double(), base, atol=EXACT_ATOL, rtol=0)
    assert reference.abs().max().item() > 1e-3, "the game should not be trivial"


@pytest.mark.parametrize("name", GAMES)
def test_kernel_shap_within_its_std_errors_of_shapiq(name, cases):
    game, reference, _ = cases[name]
    estimate = kernel_shap(tabulated(game), 4002, generator=torch.Generator().manual_seed(2))
    assert_within_std_errors(estimate, reference, f"kernel_shap on the {name}")


@pytest.mark.parametrize("name", GAMES)
def test_permutation_within_its_std_errors_of_shapiq(name, cases):
    game, reference, _ = cases[name]
    estimate = permutation_shapley(tabulated(game), 2000, generator=torch.Generator().manual_seed(3))
    assert_within_std_errors(estimate, reference, f"permutation_shapley on the {name}")
