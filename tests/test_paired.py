"""Paired comparisons in reports: per-image differences, their interval, and the plain verdict."""

from __future__ import annotations

import numpy as np
import pytest

from explainvec.evaluation.paired import Interval, paired_comparison, verdict


def test_paired_comparison_is_the_mean_of_per_image_differences():
    rng = np.random.default_rng(0)
    base = rng.normal(size=40)
    per_image = {"model": {"m": list(base + 0.5)}, "lambda0": {"m": list(base)}}
    interval = paired_comparison(per_image, "model", "lambda0", "m")
    # a constant shift: every per-image difference is 0.5, however noisy the images are
    assert interval.mean == pytest.approx(0.5) and interval.low == pytest.approx(0.5)
    unpaired = paired_comparison(
        {"a": {"m": list(base)}, "b": {"m": list(rng.permutation(base))}}, "a", "b", "m"
    )
    assert unpaired.low < 0 < unpaired.high


@pytest.mark.parametrize(
    ("interval", "word"),
    [
        (Interval(0.2, 0.1, 0.3), "ahead of"),
        (Interval(-0.2, -0.3, -0.1), "behind"),
        (Interval(0.0, -0.1, 0.1), "not distinguishable from"),
    ],
)
def test_verdict_says_plainly_which_side_of_zero_the_interval_is(interval, word):
    sentence = verdict("transferred", "rollout", "insertion_minus_deletion", interval)
    assert sentence.startswith(f"transferred is {word} rollout on insertion minus deletion")
    assert str(interval) in sentence
