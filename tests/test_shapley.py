"""Tests for explainvec.shapley: exact values, KernelSHAP, permutation sampling and the kernel sampler."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from explainvec.shapley import (
    FunctionGame,
    Game,
    ShapleyValues,
    TabularGame,
    all_coalitions,
    evaluate_in_chunks,
    exact_shapley,
    kernel_shap,
    permutation_shapley,
    sample_kernel_coalitions,
    shapley_kernel_sizes,
)


class CountingGame:
    """Wraps a game and records how many coalitions per input each call received."""

    def __init__(self, game: Game) -> None:
        self.game = game
        self.num_players = game.num_players
        self.num_inputs = game.num_inputs
        self.calls: list[int] = []

    def __call__(self, masks: torch.Tensor) -> torch.Tensor:
        self.calls.append(masks.shape[1])
        return self.game(masks)


def additive_game(weights: torch.Tensor, offset: float = 0.0) -> FunctionGame:
    """v(S) = offset + Σ_{j∈S} w_j for weights ``[B, P, C]``; its Shapley values are the weights."""
    return FunctionGame(
        lambda masks: offset + masks.to(weights.dtype) @ weights.to(masks.device),
        num_players=weights.shape[1],
        num_inputs=weights.shape[0],
    )


ADDITIVE_WEIGHTS = torch.tensor([[1.0, -2.0], [0.5, 0.0], [-3.0, 1.0], [2.0, 4.0]], dtype=torch.float64)


def hand_batch_game() -> tuple[FunctionGame, torch.Tensor]:
    """B=3, P=4, C=2 games with hand-computed Shapley values ``[3, 4, 2]``.

    input 0: additive with ADDITIVE_WEIGHTS.
    input 1: class 0 v = 3·[0∈S and 1∈S] → (3/2, 3/2, 0, 0); class 1 majority of {0, 1, 2}, 3 is a dummy
             → (1/3, 1/3, 1/3, 0).
    input 2: class 0 weighted voting, weights (3, 1, 1, 1), quota 4: player 0 is pivotal unless it comes
             first → 3/4, each other player only right after player 0 in first place → 1/12;
             class 1 v = 5 + [S = all] → 1/4 each (the constant 5 moves only v(∅)).
    """

    def values(masks: torch.Tensor) -> torch.Tensor:
        m = masks.double()
        additive = m[0] @ ADDITIVE_WEIGHTS
        pair = 3.0 * m[1, :, 0] * m[1, :, 1]
        majority = (m[1, :, :3].sum(-1) >= 2).double()
        voting = (m[2] @ torch.tensor([3.0, 1.0, 1.0, 1.0], dtype=torch.float64) >= 4).double()
        unanimity = 5.0 + masks[2].all(-1).double()
        return torch.stack(
            [additive, torch.stack([pair, majority], -1), torch.stack([voting, unanimity], -1)], dim=0
        )

    expected = torch.tensor(
        [
            ADDITIVE_WEIGHTS.tolist(),
            [[1.5, 1 / 3], [1.5, 1 / 3], [0.0, 1 / 3], [0.0, 0.0]],
            [[3 / 4, 1 / 4], [1 / 12, 1 / 4], [1 / 12, 1 / 4], [1 / 12, 1 / 4]],
        ],
        dtype=torch.float64,
    )
    return FunctionGame(values, num_players=4, num_inputs=3), expected


def smooth_table(num_players: int, num_classes: int, seed: int) -> torch.Tensor:
    """Value table ``[2**P, C]`` of a nonlinear game tanh(Σ w_j z_j + Σ_jk Q_jk z_j z_k)."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(num_players, num_classes, generator=generator, dtype=torch.float64)
    pairs = torch.randn(num_players, num_players, num_classes, generator=generator, dtype=torch.float64)
    z = all_coalitions(num_players).double()
    return torch.tanh(z @ weights + torch.einsum("np,nq,pqc->nc", z, z, pairs) / num_players)


def batch_of(table: torch.Tensor, num_inputs: int) -> TabularGame:
    """The same game repeated for ``num_inputs`` inputs (each input gets its own random coalitions)."""
    return TabularGame(table.expand(num_inputs, -1, -1).contiguous())


def brute_force_shapley(game: Game) -> torch.Tensor:
    """Average marginal contributions over all P! orderings, ``[B, P, C]``."""
    num_players = game.num_players
    total = 0.0
    for order in itertools.permutations(range(num_players)):
        masks = torch.zeros(num_players + 1, num_players, dtype=torch.bool)
        for step, player in enumerate(order):
            masks[step + 1 :, player] = True
        chain = game(masks.expand(game.num_inputs, -1, -1)).double()
        total = total + chain.diff(dim=1)[:, torch.tensor(order).argsort()]
    return total / math.factorial(num_players)


# ---------------------------------------------------------------- games and containers


def test_games_satisfy_protocol() -> None:
    game, _ = hand_batch_game()
    assert isinstance(game, Game)
    assert isinstance(batch_of(smooth_table(3, 2, 0), 2), Game)


def test_tabular_game_indexes_by_bits() -> None:
    table = torch.arange(8, dtype=torch.float32).reshape(1, 8, 1)
    masks = torch.tensor([[[False, False, False], [True, False, False], [False, True, True], [True] * 3]])
    assert TabularGame(table)(masks).flatten().tolist() == [0.0, 1.0, 6.0, 7.0]
    with pytest.raises(ValueError, match="power of two"):
        TabularGame(torch.zeros(1, 6, 1))


def test_evaluate_in_chunks_matches_one_call() -> None:
    game = CountingGame(batch_of(smooth_table(6, 3, 1), 3))
    masks = torch.rand(3, 37, 6, generator=torch.Generator().manual_seed(0)) < 0.5
    chunked = evaluate_in_chunks(game, masks, chunk_size=5)
    assert game.calls == [5] * 7 + [2]
    torch.testing.assert_close(chunked, game(masks), rtol=0, atol=0)
    with pytest.raises(ValueError, match="chunk_size"):
        evaluate_in_chunks(game, masks, chunk_size=0)
    with pytest.raises(ValueError, match="do not fit"):
        evaluate_in_chunks(game, masks[:, :, :5], chunk_size=5)


def test_efficiency_gap() -> None:
    result = ShapleyValues(
        values=torch.tensor([[[1.0], [2.0]]]),
        std_errors=None,
        evaluations=4,
        base=torch.tensor([[1.0]]),
        full=torch.tensor([[3.5]]),
    )
    assert result.efficiency_gap() == pytest.approx(0.5)


# ---------------------------------------------------------------- sampling


def test_kernel_size_probabilities() -> None:
    probs = shapley_kernel_sizes(6)
    k = torch.arange(1, 6, dtype=torch.float64)
    expected = 5 / (k * (6 - k))
    torch.testing.assert_close(probs, expected / expected.sum())
    torch.testing.assert_close(probs, probs.flip(0))
    with pytest.raises(ValueError):
        shapley_kernel_sizes(1)


def test_paired_samples_are_complements_with_kernel_sizes() -> None:
    num_players = 10
    masks = sample_kernel_coalitions(2, num_players, 20000, generator=torch.Generator().manual_seed(0))
    assert masks.shape == (2, 20000, num_players) and masks.dtype == torch.bool
    assert torch.equal(masks[:, 1::2], ~masks[:, 0::2])
    sizes = masks.sum(-1)
    assert sizes.min() >= 1 and sizes.max() <= num_players - 1
    # The first member of each pair is an independent draw; the complement's size follows by symmetry.
    first_sizes = sizes[:, 0::2].flatten()
    counts = torch.bincount(first_sizes, minlength=num_players)[1:].double()
    expected = shapley_kernel_sizes(num_players) * first_sizes.numel()
    assert stats.chisquare(counts.numpy(), expected.numpy()).pvalue > 1e-3
    frequencies = torch.bincount(sizes.flatten(), minlength=num_players)[1:] / sizes.numel()
    assert (frequencies - shapley_kernel_sizes(num_players)).abs().max() < 0.01


def test_unpaired_members_are_uniform_given_size() -> None:
    num_players, num_samples = 8, 20000
    masks = sample_kernel_coalitions(
        1, num_players, num_samples, paired=False, generator=torch.Generator().manual_seed(1)
    )[0]
    sizes = masks.sum(-1)
    assert not torch.equal(masks[1::2], ~masks[0::2])
    for size in (1, 2, 4):
        chosen = masks[sizes == size].double()
        rate = size / num_players
        tolerance = 5 * math.sqrt(rate * (1 - rate) / chosen.shape[0])
        assert (chosen.mean(0) - rate).abs().max() < tolerance


@settings(max_examples=30, deadline=None, database=None, derandomize=True)
@given(
    num_players=st.integers(2, 40),
    num_pairs=st.integers(0, 20),
    num_inputs=st.integers(1, 3),
    seed=st.integers(0, 2**31),
)
def test_sampler_invariants(num_players: int, num_pairs: int, num_inputs: int, seed: int) -> None:
    masks = sample_kernel_coalitions(
        num_inputs, num_players, 2 * num_pairs, generator=torch.Generator().manual_seed(seed)
    )
    assert masks.shape == (num_inputs, 2 * num_pairs, num_players)
    assert torch.equal(masks[:, 1::2], ~masks[:, 0::2])
    sizes = masks.sum(-1)
    assert bool(((sizes >= 1) & (sizes <= num_players - 1)).all())


def test_sampler_rejects_odd_paired_and_is_reproducible() -> None:
    with pytest.raises(ValueError, match="even"):
        sample_kernel_coalitions(1, 5, 7)
    first = sample_kernel_coalitions(2, 7, 12, generator=torch.Generator().manual_seed(3))
    second = sample_kernel_coalitions(2, 7, 12, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, second)
    assert sample_kernel_coalitions(2, 7, 5, paired=False).shape == (2, 5, 7)


# ---------------------------------------------------------------- exact


def test_exact_reproduces_hand_values() -> None:
    game, expected = hand_batch_game()
    counting = CountingGame(game)
    result = exact_shapley(counting, chunk_size=5)
    torch.testing.assert_close(result.values.double(), expected, atol=1e-6, rtol=0)
    assert result.std_errors is None
    assert result.evaluations == 16 and sum(counting.calls) == 16 and max(counting.calls) <= 5
    torch.testing.assert_close(result.base.double(), game(torch.zeros(3, 1, 4, dtype=torch.bool))[:, 0])
    torch.testing.assert_close(result.full.double(), game(torch.ones(3, 1, 4, dtype=torch.bool))[:, 0])
    assert result.efficiency_gap() < 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_matches_brute_force_permutations(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    game = TabularGame(torch.randn(2, 2**5, 3, generator=generator, dtype=torch.float64))
    result = exact_shapley(game, chunk_size=7)
    torch.testing.assert_close(result.values, brute_force_shapley(game), atol=1e-10, rtol=0)
    assert result.efficiency_gap() < 1e-10


def test_exact_single_player_and_limits() -> None:
    game = TabularGame(torch.tensor([[[1.0], [4.0]]]))
    assert exact_shapley(game).values.item() == pytest.approx(3.0)
    assert permutation_shapley(game, 4).values.item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="2 players"):
        kernel_shap(game, 10)
    too_many = FunctionGame(lambda masks: masks.float().sum(-1, keepdim=True), num_players=17, num_inputs=1)
    with pytest.raises(ValueError, match="2\\*\\*P"):
        exact_shapley(too_many)


# ---------------------------------------------------------------- KernelSHAP


@pytest.mark.parametrize("budget", [20, 50, 150, 1000])
def test_kernel_shap_exact_on_additive_games(budget: int) -> None:
    weights = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(budget), dtype=torch.float64)
    result = kernel_shap(
        additive_game(weights, offset=2.0), budget, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(result.values, weights, atol=1e-8, rtol=0)
    torch.testing.assert_close(result.std_errors, torch.zeros_like(weights), atol=1e-8, rtol=0)


def test_kernel_shap_hand_batch() -> None:
    game, expected = hand_batch_game()
    result = kernel_shap(game, 2000, generator=torch.Generator().manual_seed(0))
    error = (result.values.double() - expected).abs()
    assert error.max() < 0.03  # measured 0.016; the smallest nonzero value is 1/12
    assert (error <= 3 * result.std_errors.double() + 1e-9).all()
    assert result.efficiency_gap() < 1e-5


@pytest.mark.parametrize("paired", [True, False])
def test_kernel_shap_efficiency_at_every_budget(paired: bool) -> None:
    game = batch_of(smooth_table(10, 2, 2), 4)
    budgets = [4, 6, 8, 12, 22, 52, 150, 1000] if paired else [4, 5, 7, 12, 33, 151]
    for budget in budgets:
        result = kernel_shap(game, budget, paired=paired, generator=torch.Generator().manual_seed(budget))
        assert torch.isfinite(result.values).all()
        assert result.efficiency_gap() < 1e-5, budget


def test_kernel_shap_error_decreases_with_budget() -> None:
    game = batch_of(smooth_table(10, 2, 3), 16)
    exact = exact_shapley(game).values
    errors = [
        (kernel_shap(game, budget, generator=torch.Generator().manual_seed(1)).values - exact).abs().mean()
        for budget in (50, 500, 5000)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.02


@pytest.mark.parametrize("paired", [True, False])
def test_kernel_shap_std_errors_match_actual_error(paired: bool) -> None:
    game = batch_of(smooth_table(10, 2, 4), 32)
    exact = exact_shapley(game).values
    result = kernel_shap(game, 1000, paired=paired, generator=torch.Generator().manual_seed(2))
    ratio = (result.values - exact).abs().mean() / result.std_errors.mean()
    # For a normal error E|e| = 0.8 σ (measured 0.85 paired, 0.82 unpaired): a σ off by 2× is outside
    assert 0.65 < ratio < 1.1


def test_kernel_shap_budget_accounting() -> None:
    game = CountingGame(batch_of(smooth_table(5, 2, 5), 2))
    result = kernel_shap(game, 150, chunk_size=64)
    assert result.evaluations == 150
    assert sum(game.calls) == 150 and max(game.calls) <= 64
    assert result.values.shape == result.std_errors.shape == (2, 5, 2)
    assert result.base.shape == result.full.shape == (2, 2)
    assert kernel_shap(game, 4).std_errors is None  # one paired draw
    assert kernel_shap(game, 6).std_errors is not None  # two paired draws: the fewest with a spread


@pytest.mark.parametrize(("budget", "paired"), [(3, True), (2, False), (151, True), (5, True), (0, False)])
def test_kernel_shap_rejects_bad_budgets(budget: int, paired: bool) -> None:
    with pytest.raises(ValueError, match="budget"):
        kernel_shap(batch_of(smooth_table(5, 1, 0), 1), budget, paired=paired)


def test_kernel_shap_keeps_float32_and_is_reproducible() -> None:
    game = TabularGame(smooth_table(6, 2, 6).float().expand(2, -1, -1))
    first = kernel_shap(game, 100, generator=torch.Generator().manual_seed(4))
    second = kernel_shap(game, 100, generator=torch.Generator().manual_seed(4))
    assert first.values.dtype == torch.float32
    assert torch.equal(first.values, second.values)
    assert first.efficiency_gap() < 1e-5


# ---------------------------------------------------------------- permutation sampling


def test_permutation_exact_on_additive_games() -> None:
    weights = torch.randn(3, 7, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    result = permutation_shapley(additive_game(weights), 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(result.values, weights, atol=1e-10, rtol=0)


@pytest.mark.parametrize("antithetic", [True, False])
def test_permutation_converges_to_exact(antithetic: bool) -> None:
    game = CountingGame(batch_of(smooth_table(6, 2, 7), 4))
    exact = exact_shapley(game.game).values
    coarse = permutation_shapley(game, 20, antithetic=antithetic, generator=torch.Generator().manual_seed(0))
    game.calls.clear()
    fine = permutation_shapley(game, 2000, antithetic=antithetic, generator=torch.Generator().manual_seed(0))
    assert fine.evaluations == 2 + 2000 * 5 == sum(game.calls)
    fine_error = (fine.values - exact).abs()
    assert fine_error.mean() < (coarse.values - exact).abs().mean()
    assert fine_error.max() < 0.05
    assert bool((fine_error <= 5 * fine.std_errors + 1e-9).all())
    assert fine.efficiency_gap() < 1e-9 and coarse.efficiency_gap() < 1e-9


@pytest.mark.parametrize("antithetic", [True, False])
def test_permutation_std_errors_match_actual_error(antithetic: bool) -> None:
    game = batch_of(smooth_table(10, 2, 4), 32)
    exact = exact_shapley(game).values
    result = permutation_shapley(game, 200, antithetic=antithetic, generator=torch.Generator().manual_seed(2))
    ratio = (result.values - exact).abs().mean() / result.std_errors.mean()
    # For a normal error E|e| = 0.8 σ (measured 0.79 antithetic, 0.75 not; 0.75–0.88 over seeds 0–5): a σ
    # off by 2× is outside
    assert 0.65 < ratio < 1.1


def test_permutation_hand_batch_and_arguments() -> None:
    game, expected = hand_batch_game()
    result = permutation_shapley(game, 2000, generator=torch.Generator().manual_seed(1))
    error = (result.values.double() - expected).abs()
    assert error.max() < 0.04  # measured 0.022; the smallest nonzero value is 1/12
    assert (error <= 4 * result.std_errors.double() + 1e-9).all()
    assert permutation_shapley(game, 2).std_errors is None
    with pytest.raises(ValueError, match="even"):
        permutation_shapley(game, 3)
    with pytest.raises(ValueError):
        permutation_shapley(game, 0, antithetic=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_estimators_run_on_cuda() -> None:
    table = smooth_table(8, 3, 8).cuda()
    game = TabularGame(table.expand(2, -1, -1))
    exact = exact_shapley(game, device="cuda").values
    assert exact.device.type == "cuda"
    generator = torch.Generator(device="cuda").manual_seed(0)
    kernel = kernel_shap(game, 2000, generator=generator)
    permutation = permutation_shapley(game, 500, generator=generator)
    for result in (kernel, permutation):
        assert result.values.device.type == "cuda"
        assert result.efficiency_gap() < 1e-5
        assert (result.values - exact).abs().max() < 0.1
