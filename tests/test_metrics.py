"""Metrics against hand-computed cases: additive games, where the perfect map is known exactly."""

import itertools

import numpy as np
import pytest
import torch
from scipy import stats

from explainvec.evaluation import metrics as m
from explainvec.models.vit import build_vit
from explainvec.shapley import exact_shapley
from explainvec.shapley.game import FunctionGame
from explainvec.shapley.model_games import MaskedModelGame


def additive_game(weights: torch.Tensor) -> FunctionGame:
    """``v(S) = Σ_{j∈S} w_j`` (one output): its Shapley values are ``w`` itself."""
    return FunctionGame(
        lambda masks: (masks.float() * weights[:, None, :]).sum(-1, keepdim=True),
        weights.shape[1],
        weights.shape[0],
    )


@pytest.fixture
def weights():
    return torch.tensor([[3.0, -1.0, 0.5, 2.0, -2.0, 0.0], [1.0, 4.0, -3.0, 0.2, 0.1, -0.5]])


def test_perfect_map_is_best_and_reversed_worst_on_an_additive_game(weights):
    game, classes = additive_game(weights), torch.zeros(2, dtype=torch.long)
    perfect = m.insertion_deletion_auc(game, weights, classes)
    reversed_ = m.insertion_deletion_auc(game, -weights, classes)
    # Every ordering of the 6 patches: the perfect one attains the maximum insertion and minimum deletion.
    every = [
        m.insertion_deletion_auc(game, -torch.tensor(order, dtype=torch.float).expand(2, 6), classes)
        for order in itertools.permutations(range(6))
    ]
    insertions, deletions = torch.stack([e[0] for e in every]), torch.stack([e[1] for e in every])
    torch.testing.assert_close(perfect[0], insertions.max(0).values)
    torch.testing.assert_close(perfect[1], deletions.min(0).values)
    torch.testing.assert_close(reversed_[0], insertions.min(0).values)
    torch.testing.assert_close(reversed_[1], deletions.max(0).values)
    random = m.insertion_minus_deletion(
        game, torch.randn(2, 6, generator=torch.Generator().manual_seed(0)), classes
    )
    gap = perfect[0] - perfect[1]
    assert (gap >= random).all() and (random >= reversed_[0] - reversed_[1]).all()


def test_insertion_and_deletion_curves_of_an_additive_game_by_hand():
    """``v(S) = Σ_{j∈S} w_j`` with w = (3, −1, 2), ranked by w: insertion keeps 3, then 2, then −1."""
    weights = torch.tensor([[3.0, -1.0, 2.0]])
    insertion, deletion = m.insertion_deletion_curves(additive_game(weights), weights, torch.tensor([0]))
    torch.testing.assert_close(insertion, torch.tensor([[0.0, 3.0, 5.0, 4.0]]))
    torch.testing.assert_close(deletion, torch.tensor([[4.0, 1.0, -1.0, 0.0]]))


def test_curve_auc_of_known_curves():
    curves = torch.tensor([[0.0, 0.5, 1.0], [1.0, 1.0, 1.0]])
    torch.testing.assert_close(m.curve_auc(curves), torch.tensor([0.5, 1.0]))


def test_fidelity_metrics_by_hand():
    reference = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    torch.testing.assert_close(m.pearson(2 * reference + 1, reference), torch.tensor([1.0]))
    torch.testing.assert_close(m.pearson(-reference, reference), torch.tensor([-1.0]))
    torch.testing.assert_close(m.spearman(reference.exp(), reference), torch.tensor([1.0]))  # monotone
    torch.testing.assert_close(m.mse(reference + 0.5, reference), torch.tensor([0.25]))
    # top-1 of [0, 9, 1, 2] is patch 1; the reference's top-1 is patch 3 → 0; k = 2: {1, 3} vs {2, 3} → 1/2
    estimate = torch.tensor([[0.0, 9.0, 1.0, 2.0]])
    torch.testing.assert_close(m.precision_at_k(estimate, reference), torch.tensor([0.0]))
    torch.testing.assert_close(m.precision_at_k(estimate, reference, k=2), torch.tensor([0.5]))
    signs = torch.tensor([[1.0, -1.0, 1.0, 1.0]])  # three of four signs agree
    torch.testing.assert_close(m.sign_agreement(signs, reference), torch.tensor([0.75]))
    # top-1 [1, 0, 2] against the reference's [1, 1, 2]
    logits = torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 1.0], [0.0, 0.0, 5.0]])
    reference_logits = torch.tensor([[0.0, 5.0, 1.0], [0.0, 4.0, 1.0], [1.0, 0.0, 6.0]])
    assert m.agreement(logits, reference_logits).tolist() == [1.0, 0.0, 1.0]


def test_spearman_ranks_ties_by_their_mean_rank():
    reference = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert m.spearman(torch.full((1, 4), 0.25), reference).item() == 0.0  # a constant map ranks nothing
    tied = torch.tensor([[0.0, 1.0, 1.0, 5.0, 1.0, 0.0]])
    other = torch.tensor([[2.0, 0.0, 3.0, 3.0, 1.0, 4.0]])
    expected = stats.spearmanr(tied[0].numpy(), other[0].numpy()).statistic
    assert m.spearman(tied, other).item() == pytest.approx(expected, abs=1e-6)


def test_localisation_metrics_by_hand():
    masks = torch.tensor([[0.0, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]])
    maps = torch.tensor([[0.1, 0.7, 0.2, -1.0], [0.9, 0.1, 0.0, 0.3]])
    torch.testing.assert_close(m.pointing_game(maps, masks), torch.tensor([1.0, 0.0]))
    # positive mass inside: (0.7 + 0.5 · 0.2) / 1.0 and 0.3 / 1.3
    torch.testing.assert_close(m.mask_mass(maps, masks), torch.tensor([0.8, 0.3 / 1.3]))
    # top half: {1, 2} vs mask {1, 2} → 1; {0, 3} vs {3} → 1/2
    torch.testing.assert_close(m.mask_iou(maps, masks, q=0.5), torch.tensor([1.0, 0.5]))


def test_sensitivity_n_is_one_for_the_exact_map_of_an_additive_game(weights):
    game, classes = additive_game(weights), torch.zeros(2, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    torch.testing.assert_close(m.sensitivity_n(game, weights, classes, 2, generator=generator), torch.ones(2))
    noisy = m.sensitivity_n(game, torch.randn(2, 6, generator=generator), classes, 2, generator=generator)
    assert (noisy < 0.99).all()


def test_shapley_values_of_a_real_vit_beat_random_and_reversed_maps():
    torch.manual_seed(0)
    vit = build_vit(
        {"img_size": 24, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2, "num_classes": 2}
    ).eval()
    images = torch.randn(6, 3, 24, 24)
    game, classes = MaskedModelGame(vit, images), torch.zeros(6, dtype=torch.long)
    truth = exact_shapley(game).values[:, :, 0]
    perfect = m.insertion_minus_deletion(game, truth, classes).mean()
    random = m.insertion_minus_deletion(game, torch.randn(6, 9), classes).mean()
    reversed_ = m.insertion_minus_deletion(game, -truth, classes).mean()
    assert perfect > random > reversed_


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_images():
    generator = torch.Generator().manual_seed(0)
    small, large = torch.rand(20, generator=generator), torch.rand(2000, generator=generator)
    for values in (small, large):
        summary = m.summarise(values)
        assert summary.low < summary.mean < summary.high
    assert (m.summarise(large).high - m.summarise(large).low) < (
        m.summarise(small).high - m.summarise(small).low
    ) / 5
    assert m.summarise(torch.tensor([1.0, float("nan"), 3.0])).mean == 2.0


def test_bootstrap_interval_is_scipys_percentile_interval_at_the_level_asked():
    values = torch.rand(400, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    low, high = m.bootstrap_ci(values, resamples=300, level=0.8, seed=4)
    rng = np.random.default_rng(4)
    expected = stats.bootstrap(
        (values.numpy(),), np.mean, n_resamples=300, confidence_level=0.8, method="percentile", rng=rng
    )
    assert (low, high) == tuple(expected.confidence_interval)
    # about mean ± z_0.9 · σ/√n for a normal mean
    assert high - low == pytest.approx(2 * 1.2816 * values.std().item() / 400**0.5, rel=0.15)


def test_every_metric_declares_its_direction():
    assert m.METRICS["deletion_auc"].higher_is_better is False and m.METRICS["mse"].higher_is_better is False
    assert m.METRICS["pearson"].higher_is_better and m.METRICS["pearson"].description


def test_summarise_is_seeded_and_quiet_on_degenerate_values():
    import warnings

    generator = torch.Generator().manual_seed(0)
    values = torch.rand(30, generator=generator)
    assert m.summarise(values) == m.summarise(values)
    assert m.summarise(values, seed=1) != m.summarise(values)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert m.summarise(torch.ones(40)).as_dict() == {"mean": 1.0, "low": 1.0, "high": 1.0}
        assert m.summarise(torch.tensor([0.5, float("nan")])).as_dict() == {
            "mean": 0.5,
            "low": 0.5,
            "high": 0.5,
        }
        assert all(v != v for v in m.summarise(torch.tensor([float("nan")])).as_dict().values())
        hits = torch.tensor([0.0] * 99 + [1.0])
        summary = m.summarise(hits)
        assert 0.0 <= summary.low <= summary.mean == 0.01 <= summary.high
