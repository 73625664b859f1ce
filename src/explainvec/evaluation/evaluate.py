"""Evaluating a checkpoint on data: its test-split accuracy, and the full suite report, composed as
plan (:mod:`.plan`) → measure (:mod:`.measure`) → build the report → write its figures and files."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from explainvec.evaluation.figures import plot_budget_curve, plot_lambda_curve, plot_method_grid
from explainvec.evaluation.heatmaps import to_display
from explainvec.evaluation.measure import Measurements, measure, split_hits
from explainvec.evaluation.paired import paired_comparison, verdict
from explainvec.evaluation.plan import BASELINES, Comparison, Plan, plan_rows
from explainvec.evaluation.report import Figure, Report, ReportRow
from explainvec.evaluation.suite import (
    PAIRED_METRICS,
    Batch,
    Method,
    MethodResult,
    Reference,
    Shards,
    SuiteConfig,
    equivalent_budget,
    shared_references,
)
from explainvec.models.checkpoint import Checkpoint
from explainvec.models.fingerprint import fingerprint
from explainvec.models.vit import grid_size
from explainvec.progress import SILENT, Tracker
from explainvec.shapley.label_cache import LabelCache
from explainvec.vectors.explainability_vector import ExplainabilityVector


def evaluate_checkpoint(
    checkpoint: Checkpoint,
    data: str,
    *,
    method: str = "model",
    reference: Checkpoint | None = None,
    size: int | None = None,
    masks: str | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Tracker = SILENT,
) -> ReportRow:
    """Accuracy on the test split, and agreement of top-1 predictions with ``reference`` when given; the
    models are moved to ``device`` and predict there."""
    hits = split_hits(
        [checkpoint],
        data,
        reference or checkpoint,
        size=size,
        masks=masks,
        seed=seed,
        device=device,
        progress=progress,
    )[id(checkpoint)]
    return ReportRow(
        method=method,
        accuracy=hits.correct.mean().item(),
        agreement=None if reference is None else hits.agreeing.mean().item(),
        forward_passes=1,
        extra={"images": len(hits.correct)},
    )


def suite_report(
    checkpoint: Checkpoint,
    data: str,
    out: str | Path,
    *,
    name: str = "model",
    reference: Checkpoint | None = None,
    oracle: Checkpoint | None = None,
    vector: ExplainabilityVector | None = None,
    baselines: tuple[str, ...] = BASELINES,
    images: int = 64,
    size: int | None = None,
    masks: str | None = None,
    config: SuiteConfig = SuiteConfig(),
    title: str | None = None,
    labels: str | Path | None = None,
    shards: Shards | None = None,
    device: str | torch.device = "cpu",
    progress: Tracker = SILENT,
) -> Report | None:
    """The full evaluation of ``checkpoint`` on ``data``'s test split, written under ``out`` as
    ``report.{json,md,html}`` and figures.

    Rows: ``name`` (the model's single pass); with ``reference`` (the unedited model) ``lambda0`` and
    the ``baselines`` run on it, else on the model; ``random_vector`` (a norm-matched random vector at the
    model's λ) with ``vector`` and ``reference``; ``oracle`` when given. Accuracy and agreement are on the
    whole test split, the explanation metrics on its first ``images`` images. Models, images and Kernel
    SHAP games run on ``device`` (the models are moved there); reports and figures are written from CPU.

    The Kernel SHAP references: ``labels``, a label cache of one of the compared models on these test
    images (``explainvec labels --split test``), gives that model's; the others are computed in shards,
    shared by the processes of ``shards`` (a Lightning Fabric; every process calls this, process 0 alone
    measures the rest, writes the report and returns it, the others return ``None``).
    """
    plan = plan_rows(checkpoint, Comparison(name, reference, oracle, vector, baselines), device)
    batch = suite_batch(checkpoint, data, images, masks, reference, device)
    known = {} if labels is None else cached_references(LabelCache(labels), plan, data, batch, config)
    models = [method.model for method in plan.methods]
    references = shared_references(models, batch, config, shards, known=known, progress=progress)
    if shards is not None and shards.global_rank != 0:
        return None
    measured = measure(
        plan, batch, data, size=size, masks=masks, config=config, references=references, progress=progress
    )
    report = build_report(plan, measured, data, config, title)
    write_report(report, plan, batch, out)
    return report


def cached_references(
    cache: LabelCache, plan: Plan, data: str, batch: Batch, config: SuiteConfig
) -> dict[int, Reference]:
    """The reference of the compared model that ``cache`` holds labels of (by weights fingerprint), read
    from it; ValueError naming what differs when the cache holds other labels (another model, data, split,
    read-out, budget or seed, or too few images)."""
    meta, count = cache.meta, len(batch.images)
    models = {fingerprint(row.method.model.vit.state_dict()): row.method.model for row in plan.rows}
    if meta.value_model not in models:
        raise ValueError(f"label cache {cache.folder} holds labels of none of the compared models")
    expected = {
        "data": data,
        "split": "test",
        "output": plan.readout,
        "budget": config.reference_budget,
        "seed": config.seed,
    }
    differences = [f"{k} {getattr(meta, k)!r} != {v!r}" for k, v in expected.items() if getattr(meta, k) != v]
    if meta.num_items < count:
        differences.append(f"num_items {meta.num_items} < {count} images")
    if differences:
        raise ValueError(f"label cache {cache.folder} holds other labels: {', '.join(differences)}")
    tensors = cache.load_tensors()
    errors = tensors.get("std_errors")
    model = models[meta.value_model]
    return {
        id(model): Reference(
            tensors["values"][:count].to(batch.images.device),
            0.0 if errors is None else errors[:count].mean().item(),
            "label cache",
        )
    }


def suite_batch(
    checkpoint: Checkpoint,
    data: str,
    count: int,
    masks: str | None,
    reference: Checkpoint | None,
    device: str | torch.device = "cpu",
) -> Batch:
    """The first ``count`` test images with labels and per-patch mask shares (where masks exist), on
    ``device`` with the unedited model."""
    test = checkpoint.load_split(data, "test", size=count, masks=masks)
    count = min(count, len(test))
    items = [test[i] for i in range(count)]
    images = torch.stack([item[0] for item in items])
    pixel_masks = torch.stack([torch.as_tensor(item[2]).float() for item in items])
    batch_masks = None
    if pixel_masks.dim() == 3 and pixel_masks.sum() > 0:
        grid = grid_size(checkpoint.model)
        batch_masks = F.adaptive_avg_pool2d(pixel_masks[:, None], grid).flatten(1)
    return Batch(
        images.to(device),
        torch.tensor([item[1] for item in items], device=device),
        None if batch_masks is None else batch_masks.to(device),
        (reference or checkpoint).model.to(device).eval(),
    )


PAIRED_AGAINST = ("lambda0", "rollout", "direct_attribution")
"""What a user already has for free: the unedited model's own map, attention rollout and the direct
attribution (a training-free single pass; a transferred map must add to it)."""


def build_report(
    plan: Plan, measured: Measurements, data: str, config: SuiteConfig, title: str | None = None
) -> Report:
    """The report of ``measured`` (figures not yet added): a row per planned method, the equivalent Kernel
    SHAP budget of the model's single pass, the notes and the details."""
    name = plan.rows[0].method.name
    rows = [_report_row(result) for result in measured.results]
    curve, single = measured.curve, _single_pass(rows)
    metrics = ("pearson", "insertion_minus_deletion")
    equivalent = {k: equivalent_budget(curve, k, single[name][k]) for k in metrics} if curve else {}
    explains = "the unedited model" if plan.reference is not None else "the model"
    notes = [
        f"explanation metrics on {measured.images} test images, accuracy and agreement on the whole "
        "test split; ± is half the 95 % bootstrap interval; best per column in bold",
        f"fidelity: Pearson with Kernel SHAP-{config.reference_budget} of each row's own model "
        f"({plan.readout} read-out game); insertion/deletion on probabilities by attention masking",
        f"baselines explain {explains}; agreement is with {explains}",
        "evaluation_seconds and evaluations_per_image: what measuring each row cost (its explanation, "
        "every metric, and its model's Kernel SHAP reference on the first row of that model; "
        "forward_passes and ms_per_image are the explanation's own cost)",
    ]
    per_image = {result.method: result.per_image for result in measured.results}
    comparisons = [
        (against, metric, paired_comparison(per_image, name, against, metric))
        for against in PAIRED_AGAINST
        if against in per_image and against != name
        for metric in PAIRED_METRICS
    ]
    verdicts = [verdict(name, against, metric, interval) for against, metric, interval in comparisons]
    if equivalent:
        notes.append(
            f"equivalent Kernel SHAP budget of {name}'s single pass: "
            + ", ".join(f"{k} {_budget(v, config.budgets)}" for k, v in equivalent.items())
        )
    return Report(
        title=title or f"Evaluation of {name} on {data}",
        data=data,
        lambda_=plan.checkpoint.meta.explanation.lam,
        rows=rows,
        verdicts=verdicts,
        notes=notes,
        details={
            "paired": [
                {"row": name, "against": against, "metric": metric, **vars(interval)}
                for against, metric, interval in comparisons
            ],
            "kernel_shap_budget_curve": curve,
            "equivalent_kernel_shap_budget": equivalent,
            **measured.reference_errors,
            "suite": config.model_dump(),
        },
    )


def write_report(report: Report, plan: Plan, batch: Batch, out: str | Path) -> Path:
    """Plot the figures (budget curve, λ curve, example maps) into ``out``, add them to ``report`` and write
    it there; returns the JSON path."""
    out = Path(out)
    curve = report.details["kernel_shap_budget_curve"]
    if curve:
        plot_budget_curve(curve, _single_pass(report.rows), out / "budget_curve.png")
        caption = "Kernel SHAP on the model at each budget; dashed: single-pass methods"
        report.figures.append(Figure(path="budget_curve.png", caption=caption))
    lambda_curve = plan.checkpoint.meta.explanation.lambda_curve
    if lambda_curve is not None:
        criterion = plan.checkpoint.meta.explanation.lambda_criterion
        plot_lambda_curve(lambda_curve, report.lambda_, out / "lambda_curve.png", criterion)
        report.figures.append(Figure(path="lambda_curve.png", caption="how λ was chosen"))
    _method_grid(plan.methods, plan.checkpoint, batch, out / "examples.png")
    report.figures.append(
        Figure(path="examples.png", caption="example maps of the predicted class, per method")
    )
    return report.write(out)


def _report_row(result: MethodResult) -> ReportRow:
    means = {k: v["mean"] for k, v in result.metrics.items()}
    return ReportRow(
        method=result.method,
        accuracy=means["accuracy"],
        agreement=means["agreement"],
        insertion_auc=means["insertion_auc"],
        deletion_auc=means["deletion_auc"],
        insertion_minus_deletion=means["insertion_minus_deletion"],
        shapley_pearson=means["pearson"],
        forward_passes=result.forward_passes,
        ms_per_image=result.ms_per_image,
        evaluation_seconds=result.evaluation_seconds,
        evaluations_per_image=result.evaluations_per_image,
        metrics=result.metrics,
        extra={"reference": result.reference} if result.reference else {},
    )


def _single_pass(rows: list[ReportRow]) -> dict[str, dict[str, float]]:
    """Pearson and insertion − deletion of the single-pass rows that explain (not random, not rollout)."""
    return {
        r.method: {"pearson": r.shapley_pearson, "insertion_minus_deletion": r.insertion_minus_deletion}
        for r in rows
        if r.forward_passes == 1 and r.method not in ("random", "rollout")
    }


def _budget(value: float | None, budgets: list[int]) -> str:
    return f"> {max(budgets)}" if value is None else f"≈ {value:.0f}"


def _method_grid(
    methods: list[Method], checkpoint: Checkpoint, batch: Batch, path: Path, count: int = 4
) -> None:
    images = batch.images[:count]
    maps = {}
    for method in methods:
        with torch.no_grad():
            out = method.model(images)
        attributions = method.attributor(method.model, images, out)
        rows = torch.arange(len(images), device=attributions.device)
        maps[method.name] = attributions[rows, :, out.predicted.to(attributions.device)].cpu().numpy()
    pictures = [to_display(image, checkpoint.meta.preprocess) for image in images]
    grid = grid_size(checkpoint.model)
    masks = None
    if batch.masks is not None:
        masks = [mask.reshape(grid).cpu().numpy() for mask in batch.masks[:count]]
    plot_method_grid(pictures, masks, maps, grid, path)
