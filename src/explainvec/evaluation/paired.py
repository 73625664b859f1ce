"""Means with 95 % intervals over bases and images: a two-level (cluster) bootstrap.

Images of one base are not independent draws of the recipe's effect (the base decides much of it), so
the bootstrap resamples bases first and images within each drawn base second. A paired comparison is
the same interval of per-image differences between two rows measured on the same images and models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A mean and its 95 % interval."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"

    @property
    def above_zero(self) -> bool:
        return self.low > 0


def cluster_interval(groups: list[np.ndarray], *, resamples: int = 2000, seed: int = 0) -> Interval:
    """Mean of all values in ``groups`` (one array per base) and its 95 % two-level bootstrap interval;
    with a single group, the ordinary bootstrap over its values."""
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not groups:
        raise ValueError("no values to summarise")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for r in range(resamples):
        drawn = (
            groups if len(groups) == 1 else [groups[i] for i in rng.integers(len(groups), size=len(groups))]
        )
        means[r] = np.concatenate([g[rng.integers(len(g), size=len(g))] for g in drawn]).mean()
    low, high = np.quantile(means, [0.025, 0.975])
    return Interval(float(np.concatenate(groups).mean()), float(low), float(high))


def paired_comparison(
    per_image: dict[str, dict[str, list[float]]], row: str, against: str, metric: str
) -> Interval:
    """Mean per-image difference ``row − against`` of ``metric`` (measured on the same images) and its
    95 % bootstrap interval."""
    difference = np.subtract(per_image[row][metric], per_image[against][metric])
    return cluster_interval([difference])


def verdict(row: str, against: str, metric: str, interval: Interval) -> str:
    """One plain sentence: is ``row`` ahead of ``against`` on ``metric``, with the paired interval."""
    word = "ahead of" if interval.low > 0 else "behind" if interval.high < 0 else "not distinguishable from"
    return f"{row} is {word} {against} on {metric.replace('_', ' ')}: Δ = {interval} (paired, 95 %)"
