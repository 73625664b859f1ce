"""Property-based tests: the Shapley axioms for every estimator on random games, and the algebra of
explainability vectors on tiny random timm ViTs."""

from __future__ import annotations

import copy

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from explainvec.models.checkpoint import Checkpoint
from explainvec.shapley import (
    FunctionGame,
    TabularGame,
    all_coalitions,
    exact_shapley,
    kernel_shap,
    permutation_shapley,
)
from explainvec.vectors import ExplainabilityVector
from tiny import TINY, make_checkpoint

FEW = settings(max_examples=25, deadline=None, database=None, derandomize=True)
players = st.integers(2, 7)
seeds = st.integers(0, 2**31 - 1)
scales = st.floats(-3, 3, allow_nan=False, allow_infinity=False)


def random_table(num_players: int, seed: int, num_inputs: int = 2, num_classes: int = 2) -> torch.Tensor:
    """A random game's value table ``[B, 2**P, C]`` (float64)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(num_inputs, 1 << num_players, num_classes, generator=generator, dtype=torch.float64)


def estimators(game, seed: int):
    """Every estimator on ``game``: exact, Kernel SHAP (paired and not) and permutation sampling."""
    p = game.num_players
    generator = torch.Generator().manual_seed(seed)
    yield "exact", exact_shapley(game)
    yield "kernel_shap", kernel_shap(game, 2 + 4 * p, generator=generator)
    yield "kernel_shap unpaired", kernel_shap(game, 3 + 4 * p, paired=False, generator=generator)
    yield "permutation", permutation_shapley(game, 6, generator=generator)


# -- Shapley values -----------------------------------------------------------------------------------
@FEW
@given(num_players=players, num_classes=st.integers(1, 3), seed=seeds, offset=scales)
def test_every_estimator_returns_the_weights_of_an_additive_game(num_players, num_classes, seed, offset):
    weights = torch.randn(2, num_players, num_classes, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(seed))  # fmt: skip
    game = FunctionGame(lambda masks: offset + masks.double() @ weights, num_players, num_inputs=2)
    for name, result in estimators(game, seed):
        torch.testing.assert_close(result.values, weights, atol=1e-9, rtol=0, msg=name)


@FEW
@given(num_players=players, seed=seeds)
def test_every_estimator_is_efficient_on_random_games(num_players, seed):
    game = TabularGame(random_table(num_players, seed))
    for name, result in estimators(game, seed):
        assert result.efficiency_gap() < 1e-9, name
        torch.testing.assert_close(result.full - result.base, game.table[:, -1] - game.table[:, 0], msg=name)


@FEW
@given(num_players=players, seed=seeds, data=st.data())
def test_exact_gives_a_null_player_nothing(num_players, seed, data):
    null = data.draw(st.integers(0, num_players - 1), label="null player")
    table = random_table(num_players, seed)
    without = all_coalitions(num_players) & ~(torch.arange(num_players) == null)
    rows = (without.long() << torch.arange(num_players)).sum(-1)
    table = table[:, rows]  # v(S) = v(S \ {null})
    values = exact_shapley(TabularGame(table)).values
    torch.testing.assert_close(values[:, null], torch.zeros_like(values[:, null]), atol=1e-12, rtol=0)
    assert values.abs().sum() > 0  # the others still share v(all) − v(∅)


@FEW
@given(num_players=players, seed=seeds, data=st.data())
def test_exact_gives_symmetric_players_the_same(num_players, seed, data):
    i, k = data.draw(st.lists(st.integers(0, num_players - 1), min_size=2, max_size=2, unique=True))
    table = random_table(num_players, seed)
    coalitions = all_coalitions(num_players)
    swapped = coalitions.clone()
    swapped[:, [i, k]] = coalitions[:, [k, i]]
    bits = torch.arange(num_players)
    # v(S) + v(S with i and k swapped) is symmetric in i and k.
    table = table + table[:, (swapped.long() << bits).sum(-1)]
    values = exact_shapley(TabularGame(table)).values
    torch.testing.assert_close(values[:, i], values[:, k], atol=1e-12, rtol=0)


@FEW
@given(num_players=players, seed=seeds, scale=scales)
def test_exact_is_linear_in_the_game(num_players, seed, scale):
    u, w = random_table(num_players, seed), random_table(num_players, seed + 1)
    combined = exact_shapley(TabularGame(scale * u + w)).values
    expected = scale * exact_shapley(TabularGame(u)).values + exact_shapley(TabularGame(w)).values
    torch.testing.assert_close(combined, expected, atol=1e-10, rtol=0)


# -- explainability vectors ---------------------------------------------------------------------------
PREDICT = make_checkpoint({**TINY, "depth": 2})
TARGET, META = PREDICT.model, PREDICT.meta


def vector(seed: int, size: float = 0.01) -> ExplainabilityVector:
    """τ between TARGET and a copy of it moved by Gaussian noise of standard deviation ``size``."""
    generator = torch.Generator().manual_seed(seed)
    moved = copy.deepcopy(TARGET)
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(size * torch.randn(p.shape, generator=generator))
    return ExplainabilityVector.from_checkpoints(Checkpoint(moved, META), Checkpoint(TARGET, META))


def assert_same_vector(a: ExplainabilityVector, b: ExplainabilityVector, atol: float) -> None:
    assert a.tensors.keys() == b.tensors.keys()
    for name, t in a.tensors.items():
        torch.testing.assert_close(t, b.tensors[name], atol=atol, rtol=0, msg=name)


def assert_same_parameters(a: torch.nn.Module, b: torch.nn.Module, atol: float) -> None:
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(p, q, atol=atol, rtol=0, msg=name)


@FEW
@given(seed_a=seeds, seed_b=seeds, size_b=st.floats(0, 10))
def test_adding_then_subtracting_a_vector_gives_it_back(seed_a, seed_b, size_b):
    a, b = vector(seed_a), vector(seed_b, 0.01 * size_b)
    assert_same_vector((a + b) - b, a, atol=1e-6 * (1 + size_b))
    assert_same_vector(a + b, b + a, atol=0)


@FEW
@given(seed=seeds)
def test_apply_with_lambda_zero_is_bit_identical(seed):
    edited = vector(seed, 1.0).apply_to(TARGET, 0.0)
    assert all(torch.equal(p, q) for p, q in zip(edited.state_dict().values(), TARGET.state_dict().values(),
                                                 strict=True))  # fmt: skip


@FEW
@given(seed=seeds, lam1=scales, lam2=scales)
def test_applying_twice_adds_the_lambdas(seed, lam1, lam2):
    tau = vector(seed)
    twice = tau.apply_to(tau.apply_to(TARGET, lam1), lam2)
    assert_same_parameters(twice, tau.apply_to(TARGET, lam1 + lam2), atol=1e-5)
    assert_same_parameters(tau.apply_to(TARGET, lam1), (lam1 * tau).apply_to(TARGET, 1.0), atol=1e-6)


@FEW
@given(seed_a=seeds, seed_b=seeds, s=scales, t=scales)
def test_scalar_multiplication_distributes(seed_a, seed_b, s, t):
    a, b = vector(seed_a), vector(seed_b)
    assert_same_vector(s * (a + b), s * a + s * b, atol=1e-6)
    assert_same_vector((s + t) * a, s * a + t * a, atol=1e-6)
    assert abs((s * a).norm() - abs(s) * a.norm()) <= 1e-5 * (1 + a.norm())
