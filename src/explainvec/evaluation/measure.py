"""Measuring the planned rows: the suite's metrics on a batch, accuracy and agreement from per-image hits on
the whole test split (each model predicts once), and the model's Kernel SHAP budget curve."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from explainvec.evaluation import metrics as m
from explainvec.evaluation.plan import Plan
from explainvec.evaluation.suite import (
    Batch,
    MethodResult,
    Reference,
    SuiteConfig,
    budget_curve,
    evaluate_methods,
)
from explainvec.models.checkpoint import Checkpoint
from explainvec.models.prediction import predict_logits
from explainvec.progress import SILENT, Tracker


@dataclass(frozen=True)
class SplitHits:
    """One model's per-image 0/1 hits ``[N]`` on the whole test split: its top-1 prediction is the label
    (``correct``), and is the reference's (``agreeing``)."""

    correct: torch.Tensor
    agreeing: torch.Tensor


def split_hits(
    checkpoints: list[Checkpoint],
    data: str,
    reference: Checkpoint,
    *,
    size: int | None = None,
    masks: str | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Tracker = SILENT,
) -> dict[int, SplitHits]:
    """The hits of each of ``checkpoints`` (keyed by ``id``) on ``data``'s test split; every distinct model,
    ``reference`` included, is moved to ``device`` and predicts once."""
    logits: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for checkpoint in [*checkpoints, reference]:
        if id(checkpoint) not in logits:
            test = checkpoint.load_split(data, "test", size=size, seed=seed, masks=masks)
            if test.class_names != checkpoint.meta.class_names:
                raise ValueError(
                    f"the model's classes {checkpoint.meta.class_names} differ from the data's "
                    f"{test.class_names}"
                )
            logits[id(checkpoint)] = predict_logits(checkpoint.model, test, device=device, progress=progress)
    reference_logits = logits[id(reference)][0]
    return {
        id(c): SplitHits(m.accuracy(*logits[id(c)]), m.agreement(logits[id(c)][0], reference_logits))
        for c in checkpoints
    }


@dataclass(frozen=True)
class Measurements:
    """What the suite measured: each row's result (accuracy and agreement on the whole test split, the other
    metrics on the batch of ``images``), the references' mean standard errors, and the budget curve."""

    results: list[MethodResult]
    reference_errors: dict
    curve: list[dict[str, float]]
    images: int


def measure(
    plan: Plan,
    batch: Batch,
    data: str,
    *,
    size: int | None = None,
    masks: str | None = None,
    config: SuiteConfig = SuiteConfig(),
    references: dict[int, Reference] | None = None,
    progress: Tracker = SILENT,
) -> Measurements:
    """Every metric of every planned row with 95 % bootstrap intervals, and the budget curve of the model
    (``config.budgets``, none if empty); runs on the device of ``batch``. ``references`` (by ``id`` of a
    row's model) are used where given, the others computed."""
    references = dict(references or {})
    results, reference_errors = evaluate_methods(
        plan.methods, batch, config, references=references, progress=progress
    )
    checkpoints = [row.checkpoint for row in plan.rows]
    device = batch.images.device
    hits = split_hits(
        checkpoints, data, plan.explained, size=size, masks=masks, device=device, progress=progress
    )
    summaries = {
        key: {
            "accuracy": m.summarise(h.correct, resamples=config.resamples).as_dict(),
            "agreement": m.summarise(h.agreeing, resamples=config.resamples).as_dict(),
        }
        for key, h in hits.items()
    }
    for row, result in zip(plan.rows, results, strict=True):
        result.metrics |= summaries[id(row.checkpoint)]
    model = plan.rows[0].method.model
    curve = (
        budget_curve(model, batch, config, reference=references[id(model)].values, progress=progress)
        if config.budgets
        else []
    )
    return Measurements(results, reference_errors, curve, len(batch.images))
