"""Every metric of the evaluation suite: a small named function of a batch that returns one value per
image; the registry at the end (``METRICS``) says whether higher or lower is better. Means and 95 %
bootstrap intervals are taken over images by ``summarise``.

Maps are ``[B, P]`` (one class per image) unless stated; ``reference`` maps are Shapley values of the
same model's game; ``masks`` are per-patch shares of object pixels ``[B, P]`` in ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from explainvec.shapley.game import Game


@dataclass(frozen=True)
class Metric:
    """A metric's name, direction and one-line description (its docstring's first line)."""

    name: str
    higher_is_better: bool
    description: str


# -- prediction ----------------------------------------------------------------------------------------
def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Top-1 correctness: ``1[argmax_c logits = y]``."""
    return (logits.argmax(-1) == labels).float()


def agreement(logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """Top-1 agreement with a reference model (the unedited target): ``1[argmax f = argmax f_ref]``."""
    return (logits.argmax(-1) == reference_logits.argmax(-1)).float()


# -- insertion / deletion ------------------------------------------------------------------------------
def insertion_deletion_curves(
    game: Game, attributions: torch.Tensor, classes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Insertion and deletion curves ``[B, P + 1]``: ``v_c(top-k kept)`` and ``v_c(top-k removed)`` for
    ``k = 0 … P``, patches ranked by ``attributions`` (highest first), ``c = classes``."""
    p = attributions.shape[1]
    ranks = attributions.argsort(dim=1, descending=True).argsort(dim=1)
    kept = ranks[:, None, :] < torch.arange(p + 1, device=ranks.device)[None, :, None]
    values = game(torch.cat([kept, ~kept], dim=1))
    chosen = values.gather(2, classes.to(values.device)[:, None, None].expand(-1, 2 * (p + 1), 1))[..., 0]
    return chosen[:, : p + 1], chosen[:, p + 1 :]


def curve_auc(curves: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under curves ``[B, P + 1]`` sampled at ``k / P`` in ``[0, 1]``: ``[B]``."""
    return torch.trapezoid(curves, dx=1.0 / (curves.shape[1] - 1), dim=1)


def insertion_deletion_auc(
    game: Game, attributions: torch.Tensor, classes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image insertion and deletion AUC from one evaluation of both curves."""
    insertion, deletion = insertion_deletion_curves(game, attributions, classes)
    return curve_auc(insertion), curve_auc(deletion)


def insertion_auc(game: Game, attributions: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Area under ``k/P ↦ v_c(top-k patches kept)``: a faithful map recovers the output early."""
    return insertion_deletion_auc(game, attributions, classes)[0]


def deletion_auc(game: Game, attributions: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Area under ``k/P ↦ v_c(top-k patches removed)``: a faithful map destroys the output early."""
    return insertion_deletion_auc(game, attributions, classes)[1]


def insertion_minus_deletion(game: Game, attributions: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Insertion AUC − deletion AUC, in ``[−1, 1]``."""
    insertion, deletion = insertion_deletion_auc(game, attributions, classes)
    return insertion - deletion


# -- fidelity to reference Shapley values --------------------------------------------------------------
def pearson(attributions: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Pearson correlation over patches: ``cov(φ, φ*) / (σ_φ σ_φ*)`` (0 for a constant map)."""
    a = attributions - attributions.mean(-1, keepdim=True)
    b = reference - reference.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks over the last dimension, tied values sharing the mean of their ranks."""
    below = (values[..., None, :] < values[..., :, None]).sum(-1)
    tied = (values[..., None, :] == values[..., :, None]).sum(-1)
    return (below + (tied - 1) / 2).to(values.dtype)


def spearman(attributions: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation over patches: Pearson of the ranks, ties ranked by their mean rank (0 for a
    constant map)."""
    return pearson(_ranks(attributions), _ranks(reference))


def mse(attributions: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean squared error over patches: ``mean_j (φ_j − φ*_j)²``."""
    return (attributions - reference).pow(2).mean(-1)


def precision_at_k(attributions: torch.Tensor, reference: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """Share of the reference's top-k patches among the map's top-k (``k = ⌈P/4⌉`` by default)."""
    k = k or -(-attributions.shape[-1] // 4)
    mine = torch.zeros_like(attributions, dtype=torch.bool).scatter(
        -1, attributions.topk(k, -1).indices, True
    )
    theirs = torch.zeros_like(reference, dtype=torch.bool).scatter(-1, reference.topk(k, -1).indices, True)
    return (mine & theirs).sum(-1).float() / k


def sign_agreement(attributions: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Share of patches whose attribution has the reference's sign: ``mean_j 1[sign φ_j = sign φ*_j]``."""
    return (attributions.sign() == reference.sign()).float().mean(-1)


# -- localisation (where object masks exist) ------------------------------------------------------------
def pointing_game(attributions: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """1 if the highest-attributed patch overlaps the object mask."""
    top = attributions.argmax(-1, keepdim=True)
    return (masks.gather(-1, top)[:, 0] > 0).float()


def mask_mass(attributions: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Relevance mass inside the mask: ``Σ_j m_j φ⁺_j / Σ_j φ⁺_j`` (positive attributions only)."""
    positive = attributions.clamp_min(0)
    return (positive * masks).sum(-1) / positive.sum(-1).clamp_min(1e-12)


def mask_iou(attributions: torch.Tensor, masks: torch.Tensor, q: float = 0.25) -> torch.Tensor:
    """IoU of the top-``q`` share of patches with the patches the mask covers (any overlap)."""
    k = max(1, round(q * attributions.shape[-1]))
    top = torch.zeros_like(attributions, dtype=torch.bool).scatter(-1, attributions.topk(k, -1).indices, True)
    inside = masks > 0
    return (top & inside).sum(-1).float() / (top | inside).sum(-1).clamp_min(1).float()


# -- sensitivity-n ------------------------------------------------------------------------------------
def sensitivity_n(
    game: Game,
    attributions: torch.Tensor,
    classes: torch.Tensor,
    n: int,
    *,
    samples: int = 32,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pearson, over random subsets ``T`` of ``n`` patches, of ``Σ_{j∈T} φ_j`` with the output drop
    ``v_c(all) − v_c(all \\ T)``."""
    b, p = attributions.shape
    order = torch.rand(b, samples, p, generator=generator).argsort(-1)
    removed = order < n  # n random patches per sample
    keep = torch.cat([torch.ones(b, 1, p, dtype=torch.bool), ~removed], dim=1)
    values = game(keep.to(attributions.device))
    chosen = values.gather(2, classes.to(values.device)[:, None, None].expand(-1, samples + 1, 1))[..., 0]
    drop = chosen[:, :1] - chosen[:, 1:]
    summed = (removed.to(attributions) * attributions[:, None, :]).sum(-1)
    return pearson(summed, drop)


# -- the registry ----------------------------------------------------------------------------------------
HIGHER_IS_BETTER: dict[Callable, bool] = {
    accuracy: True,
    agreement: True,
    insertion_auc: True,
    deletion_auc: False,
    insertion_minus_deletion: True,
    pearson: True,
    spearman: True,
    mse: False,
    precision_at_k: True,
    sign_agreement: True,
    pointing_game: True,
    mask_mass: True,
    mask_iou: True,
    sensitivity_n: True,
}
"""Every per-image metric function, and whether a higher value is better."""

METRICS: dict[str, Metric] = {
    f.__name__: Metric(f.__name__, higher, (f.__doc__ or "").strip().split("\n")[0])
    for f, higher in HIGHER_IS_BETTER.items()
}
"""Every metric by name: its direction and its docstring's first line."""


# -- summaries -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """Mean over images with its 95 % bootstrap confidence interval."""

    mean: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high}


def bootstrap_ci(
    values: torch.Tensor, *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values [B]`` (``scipy.stats.bootstrap``, seeded);
    the value itself when every entry is equal."""
    values = values.detach().double().cpu().flatten().numpy()
    if (values == values[0]).all():
        return float(values[0]), float(values[0])
    result = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarise(values: torch.Tensor, **kwargs) -> Summary:
    """Mean of per-image ``values`` with its bootstrap interval (NaN entries are left out)."""
    values = values.detach().double().flatten()
    values = values[~values.isnan()]
    if len(values) == 0:
        return Summary(float("nan"), float("nan"), float("nan"))
    return Summary(values.mean().item(), *bootstrap_ci(values, **kwargs))
