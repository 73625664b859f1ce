"""The evaluation suite: every metric, for every method, on the same images, with bootstrap intervals.

A :class:`Method` is a model plus a way to explain it (an attributor). Fidelity is measured against
Kernel SHAP of that same model's read-out game at ``reference_budget`` (its mean standard error is
reported), computed once per model and shared by the methods that explain it: in shards of
``REFERENCE_SHARD`` images seeded like a label cache's, so several processes (``Shards``, e.g. a Lightning
Fabric) can share the work and get one process's values. Each row records what measuring it cost.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

import torch
from pydantic import BaseModel, Field

from explainvec.evaluation import metrics as m
from explainvec.evaluation.baselines import Attributor, kernel_shap_attributor
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.progress import SILENT, Tracker
from explainvec.shapley.exact import MAX_EXACT_PLAYERS, exact_shapley
from explainvec.shapley.game import Game
from explainvec.shapley.label_cache import kernel_shap_shard
from explainvec.shapley.model_games import MaskedModelGame, PixelMaskedGame
from explainvec.shapley.values import ShapleyValues

REFERENCE_SHARD = 16
"""Images per shard of the Kernel SHAP reference (each seeded by its first index, like a label cache's)."""


class SuiteConfig(BaseModel):
    """What the suite measures and how precisely."""

    reference_budget: int = Field(default=2048, ge=4, description="Kernel SHAP budget of the reference")
    exact_reference: bool = Field(
        default=False, description="exact Shapley values as the reference where P ≤ 16 (2**P evaluations)"
    )
    sensitivity_fraction: float = Field(default=0.25, gt=0, lt=1, description="n = fraction · P")
    sensitivity_samples: int = Field(default=32, ge=2)
    mask_q: float = Field(default=0.25, gt=0, le=1, description="top share of patches for mask IoU")
    budgets: list[int] = Field(default=[16, 32, 64, 150, 300, 600], description="Kernel SHAP budget curve")
    resamples: int = Field(default=1000, ge=10, description="bootstrap resamples")
    seed: int = 0


@dataclass
class Method:
    """A way to explain one model: the rows of the headline table."""

    name: str
    model: SelfExplainingViT
    attributor: Attributor
    forward_passes: int


@dataclass
class Batch:
    """The evaluation images, their labels, optional patch masks ``[B, P]``, and the unedited model; all on
    the device the suite runs on."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor | None = None
    reference: torch.nn.Module | None = None


class CountingGame:
    """A game that counts the coalitions it evaluates per input (``evaluations``)."""

    def __init__(self, game: Game) -> None:
        self.game, self.evaluations = game, 0
        self.num_players, self.num_inputs = game.num_players, game.num_inputs

    def __call__(self, masks: torch.Tensor) -> torch.Tensor:
        self.evaluations += masks.shape[1]
        return self.game(masks)


def method_metrics(
    method: Method, batch: Batch, reference_values: torch.Tensor, config: SuiteConfig
) -> tuple[dict[str, torch.Tensor], float, int]:
    """Per-image values of every metric for ``method``, its milliseconds per explained image, and the model
    evaluations per image that measuring it took (the explanation's and every metric's; the reference's not
    included); everything runs on the device of ``batch.images`` (where the model must be)."""
    model, images = method.model, batch.images
    with torch.no_grad():
        model(images[:1])  # warm-up, and v(∅) cached before the clock starts
    _synchronize(images.device)
    start = time.perf_counter()
    with torch.no_grad():
        out = model(images)
    maps = method.attributor(model, images, out).detach()
    _synchronize(images.device)
    milliseconds = 1000 * (time.perf_counter() - start) / len(images)
    predicted = out.predicted
    own, ref = of_class(maps, predicted), of_class(reference_values, predicted)
    game = CountingGame(MaskedModelGame(model.vit, images))
    values: dict[str, torch.Tensor] = {"accuracy": m.accuracy(out.logits, batch.labels)}
    if batch.reference is not None:
        with torch.no_grad():
            values["agreement"] = m.agreement(out.logits, batch.reference(images))
    insertion, deletion = m.insertion_deletion_auc(game, own, predicted)
    values |= {
        "insertion_auc": insertion,
        "deletion_auc": deletion,
        "insertion_minus_deletion": insertion - deletion,
    }
    other_gaps = []
    for c in range(out.logits.shape[-1]):
        chosen = torch.full_like(predicted, c)
        gap = m.insertion_minus_deletion(game, of_class(maps, chosen), chosen)
        other_gaps.append(torch.where(predicted == c, torch.nan, gap))
    values["insertion_minus_deletion_other"] = torch.stack(other_gaps, 1).nanmean(1)
    pixel = CountingGame(PixelMaskedGame.for_vit(model.vit, images))
    pixel_insertion, pixel_deletion = m.insertion_deletion_auc(pixel, own, predicted)
    values |= {"pixel_insertion_auc": pixel_insertion, "pixel_deletion_auc": pixel_deletion}
    values |= {
        name: getattr(m, name)(own, ref)
        for name in ("pearson", "spearman", "mse", "precision_at_k", "sign_agreement")
    }
    if batch.masks is not None:
        values["pointing_game"] = m.pointing_game(own, batch.masks)
        values["mask_mass"] = m.mask_mass(own, batch.masks)
        values["mask_iou"] = m.mask_iou(own, batch.masks, q=config.mask_q)
    n = max(1, round(config.sensitivity_fraction * own.shape[1]))
    generator = torch.Generator().manual_seed(config.seed)
    values["sensitivity_n"] = m.sensitivity_n(
        game, own, predicted, n, samples=config.sensitivity_samples, generator=generator
    )
    forwards = 2 + int(batch.reference is not None)  # warm-up-free count: the pass, and the agreement's
    return values, milliseconds, method.forward_passes + forwards + game.evaluations + pixel.evaluations


def of_class(maps: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """The ``[B, P]`` maps of ``classes`` (one per image) from ``[B, P, C]`` maps."""
    return maps[torch.arange(len(classes), device=maps.device), :, classes.to(maps.device)]


def _synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that wall-clock timings include it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


PAIRED_METRICS = ("pearson", "insertion_minus_deletion")
"""Metrics kept per image, so rows measured on the same images can be compared paired."""


class MethodResult(BaseModel):
    """One method's means with 95 % bootstrap intervals, its cost (the explanation's, and what measuring
    the row took: seconds and model evaluations per image, its model's reference included where it was
    computed for this row), and the headline metrics per image."""

    method: str
    metrics: dict[str, dict[str, float]]
    forward_passes: int
    ms_per_image: float
    per_image: dict[str, list[float]] = {}
    evaluation_seconds: float | None = None
    evaluations_per_image: int | None = None
    reference: str | None = None
    """Where the row's reference came from: ``computed`` (here), ``shared`` (with an earlier row of the same
    model) or ``label cache``."""


class Shards(Protocol):
    """Processes sharing the reference: this one's rank, how many, and a sum over all (Lightning Fabric)."""

    global_rank: int
    world_size: int

    def all_reduce(self, data: torch.Tensor, reduce_op: str = "mean") -> torch.Tensor: ...


@dataclass
class Reference:
    """One model's reference: values ``[B, P, C]``, their mean standard error, where they came from, and
    what computing them cost (seconds, model evaluations per image; 0 when reused)."""

    values: torch.Tensor
    mean_std_error: float
    source: str = "computed"
    seconds: float = 0.0
    evaluations: int = 0


def evaluate_methods(
    methods: list[Method],
    batch: Batch,
    config: SuiteConfig = SuiteConfig(),
    *,
    references: dict[int, Reference] | None = None,
    progress: Tracker = SILENT,
) -> tuple[list[MethodResult], dict]:
    """Every metric for every method on ``batch``; also the reference's mean standard error per model.

    ``references`` (keyed by ``id(method.model)``) may hold references computed before (by
    :func:`shared_references`, or from a label cache); the missing ones are computed and added, so a
    caller can reuse them, e.g. for :func:`budget_curve`."""
    references = {} if references is None else references
    results, charged = [], set()
    task = progress.task("evaluating methods", total=len(methods))
    for method in methods:
        key = id(method.model)
        start = time.perf_counter()
        if key not in references:
            references[key] = model_reference(method.model, batch, config)
        values, milliseconds, evaluations = method_metrics(method, batch, references[key].values, config)
        reference = references[key]
        first = key not in charged and reference.source == "computed"
        charged.add(key)
        summaries = {name: m.summarise(v, resamples=config.resamples).as_dict() for name, v in values.items()}
        results.append(
            MethodResult(
                method=method.name,
                metrics=summaries,
                forward_passes=method.forward_passes,
                ms_per_image=milliseconds,
                per_image={name: values[name].tolist() for name in PAIRED_METRICS},
                evaluation_seconds=time.perf_counter() - start + (reference.seconds if first else 0.0),
                evaluations_per_image=evaluations + (reference.evaluations if first else 0),
                reference=reference.source if first or reference.source != "computed" else "shared",
            )
        )
        task.advance()
    errors = {method.name: references[id(method.model)].mean_std_error for method in methods}
    return results, {"reference_budget": config.reference_budget, "reference_mean_std_error": errors}


def shared_references(
    models: list[SelfExplainingViT],
    batch: Batch,
    config: SuiteConfig,
    shards: Shards | None = None,
    *,
    known: dict[int, Reference] | None = None,
    progress: Tracker = SILENT,
) -> dict[int, Reference]:
    """The reference of each distinct model (keyed by ``id``) not in ``known``, its shards shared by the
    processes of ``shards`` (every process must call this with the same models, in the same order)."""
    references = dict(known or {})
    todo = list({id(model): model for model in models if id(model) not in references}.values())
    task = progress.task("Kernel SHAP references", total=len(todo))
    for model in todo:
        references[id(model)] = model_reference(model, batch, config, shards)
        task.advance()
    return references


def model_reference(
    model: SelfExplainingViT, batch: Batch, config: SuiteConfig, shards: Shards | None = None
) -> Reference:
    """:func:`reference_values` of ``model`` with its cost and mean standard error."""
    _synchronize(batch.images.device)
    start = time.perf_counter()
    estimate = reference_values(model, batch, config, shards)
    _synchronize(batch.images.device)
    error = estimate.std_errors.mean().item() if estimate.std_errors is not None else 0.0
    return Reference(estimate.values, error, "computed", time.perf_counter() - start, estimate.evaluations)


def reference_values(
    model: SelfExplainingViT, batch: Batch, config: SuiteConfig, shards: Shards | None = None
) -> ShapleyValues:
    """The reference Shapley values of ``model``'s read-out game on ``batch``: exact where asked for and
    P ≤ 16, else Kernel SHAP at ``config.reference_budget``, in shards of ``REFERENCE_SHARD`` images
    seeded by their first index. With ``shards`` (e.g. a Lightning Fabric), shard ``k`` is computed by
    process ``k % world_size`` and the processes sum their parts: every process gets the same values as
    one process alone."""
    images, readout = batch.images, model.readout
    rank, world = (shards.global_rank, shards.world_size) if shards is not None else (0, 1)
    exact = config.exact_reference and model.num_patches <= MAX_EXACT_PLAYERS
    parts: dict[str, torch.Tensor] = {}
    evaluations = 2**model.num_patches if exact else config.reference_budget
    for k, start in enumerate(range(0, len(images), REFERENCE_SHARD)):
        if k % world != rank:
            continue
        shard = images[start : start + REFERENCE_SHARD]
        if exact:
            result = exact_shapley(MaskedModelGame(model.vit, shard, readout))
        else:
            result = kernel_shap_shard(
                model.vit, shard, readout, config.reference_budget, seed=config.seed, start=start
            )
        fields = {"values": result.values, "base": result.base, "full": result.full}
        if result.std_errors is not None:
            fields["std_errors"] = result.std_errors
        for name, tensor in fields.items():
            if name not in parts:
                parts[name] = tensor.new_zeros(len(images), *tensor.shape[1:])
            parts[name][start : start + len(shard)] = tensor
    if world > 1:
        p, c = model.num_patches, model.vit.num_classes
        shapes = {"values": (len(images), p, c), "base": (len(images), c), "full": (len(images), c)}
        if not exact:
            shapes["std_errors"] = shapes["values"]
        dtype = torch.promote_types(next(model.vit.parameters()).dtype, torch.float32)
        parts = {  # a process without shards adds zeros
            name: shards.all_reduce(
                parts.get(name, torch.zeros(shape, dtype=dtype, device=images.device)), reduce_op="sum"
            )
            for name, shape in shapes.items()
        }
    return ShapleyValues(parts["values"], parts.get("std_errors"), evaluations, parts["base"], parts["full"])


def budget_curve(
    model: SelfExplainingViT,
    batch: Batch,
    config: SuiteConfig = SuiteConfig(),
    *,
    reference: torch.Tensor | None = None,
    progress: Tracker = SILENT,
) -> list[dict[str, float]]:
    """Pearson with the reference and insertion − deletion of Kernel SHAP on ``model`` at each budget
    (``reference``: the model's reference values if already computed)."""
    if reference is None:
        reference = reference_values(model, batch, config).values
    with torch.no_grad():
        out = model(batch.images)
    ref, points = of_class(reference, out.predicted), []
    task = progress.task("Kernel SHAP budget curve", total=len(config.budgets))
    for budget in config.budgets:
        maps = of_class(kernel_shap_attributor(budget)(model, batch.images, out), out.predicted)
        gap = m.insertion_minus_deletion(MaskedModelGame(model.vit, batch.images), maps, out.predicted)
        points.append(
            {
                "budget": budget,
                "pearson": m.pearson(maps, ref).mean().item(),
                "insertion_minus_deletion": gap.mean().item(),
            }
        )
        task.advance()
    return points


def equivalent_budget(curve: list[dict[str, float]], metric: str, value: float) -> float | None:
    """The smallest Kernel SHAP budget whose ``metric`` reaches ``value``, interpolated in log-budget
    between the curve's points; the first budget if it is already reached there, ``None`` if never."""
    previous = None
    for point in curve:
        if point[metric] >= value:
            if previous is None:
                return float(point["budget"])
            (b0, v0), (b1, v1) = (previous["budget"], previous[metric]), (point["budget"], point[metric])
            share = (value - v0) / (v1 - v0) if v1 != v0 else 1.0
            return math.exp(math.log(b0) + share * (math.log(b1) - math.log(b0)))
        previous = point
    return None
