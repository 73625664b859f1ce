"""Evaluating a checkpoint on data: accuracy rows, and the full suite report with baselines and figures."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from explainvec.evaluation.baselines import attributor_cost, get_attributor, random_vector_like
from explainvec.evaluation.figures import plot_budget_curve, plot_lambda_curve, plot_method_grid
from explainvec.evaluation.heatmaps import to_display
from explainvec.evaluation.metrics import summarise
from explainvec.evaluation.report import Figure, Report, ReportRow
from explainvec.evaluation.suite import (
    Batch,
    Method,
    SuiteConfig,
    budget_curve,
    equivalent_budget,
    evaluate_methods,
)
from explainvec.models.checkpoint import Checkpoint
from explainvec.models.prediction import predict_logits, top1_accuracy
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.models.vit import grid_size
from explainvec.progress import SILENT, Tracker
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
    test = checkpoint.load_split(data, "test", size=size, seed=seed, masks=masks)
    if test.class_names != checkpoint.meta.class_names:
        raise ValueError(
            f"the model's classes {checkpoint.meta.class_names} differ from the data's {test.class_names}"
        )
    logits, labels = predict_logits(checkpoint.model, test, device=device, progress=progress)
    agreement = None
    if reference is not None:
        reference_logits, _ = predict_logits(reference.model, test, device=device, progress=progress)
        agreement = (logits.argmax(1) == reference_logits.argmax(1)).float().mean().item()
    return ReportRow(
        method=method,
        accuracy=top1_accuracy(logits, labels),
        agreement=agreement,
        forward_passes=1,
        extra={"images": len(labels)},
    )


BASELINES = ("kernelshap150", "random", "rollout", "integrated_gradients")
"""Baselines the suite runs by default on the unedited model (or the model itself without one)."""


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
    device: str | torch.device = "cpu",
    progress: Tracker = SILENT,
) -> Report:
    """The full evaluation of ``checkpoint`` on ``data``'s test split, written under ``out`` as
    ``report.{json,md,html}`` and figures.

    Rows: ``name`` (the model's single pass); with ``reference`` (the unedited model) ``lambda0`` and
    the ``baselines`` run on it, else on the model; ``random_vector`` (a norm-matched random vector at the
    model's λ) with ``vector`` and ``reference``; ``oracle`` when given. Accuracy and agreement are on the
    whole test split, the explanation metrics on its first ``images`` images. Models, images and Kernel
    SHAP games run on ``device`` (the models are moved there); reports and figures are written from CPU.
    """
    out = Path(out)
    explained = reference or checkpoint
    readout = checkpoint.meta.explanation.get("readout", "logit")
    candidates = [(name, checkpoint, "single_pass")]
    if reference is not None:
        candidates.append(("lambda0", reference, "single_pass"))
    candidates += [(b, explained, b) for b in baselines]
    lam = checkpoint.meta.explanation.get("lambda")
    if vector is not None and reference is not None and lam is not None:
        control = Checkpoint(random_vector_like(vector).apply_to(reference.model, lam), reference.meta)
        candidates.append(("random_vector", control, "single_pass"))
    if oracle is not None:
        candidates.append(("oracle", oracle, "single_pass"))
    wrapped = {
        id(c): SelfExplainingViT(c.model, c.meta.class_names, readout).to(device).eval()
        for _, c, _ in candidates
    }
    methods = [
        Method(method, wrapped[id(c)], get_attributor(a), attributor_cost(a, len(c.meta.class_names)))
        for method, c, a in candidates
    ]
    batch = suite_batch(checkpoint, data, images, masks, reference, device)
    references: dict = {}
    results, reference_errors = evaluate_methods(
        methods, batch, config, references=references, progress=progress
    )
    accuracies = {
        id(c): evaluate_checkpoint(
            c, data, reference=reference or checkpoint, size=size, masks=masks, device=device
        )
        for _, c, _ in candidates
    }
    rows = []
    for (_, c, _), result in zip(candidates, results, strict=True):
        for metric in ("accuracy", "agreement"):  # on the whole test split: its interval from the counts
            share = getattr(accuracies[id(c)], metric)
            count = accuracies[id(c)].extra["images"]
            hits = torch.zeros(count)
            hits[: round(share * count)] = 1
            result.metrics[metric] = summarise(hits, resamples=config.resamples).as_dict()
        means = {k: v["mean"] for k, v in result.metrics.items()}
        rows.append(
            ReportRow(
                method=result.method,
                accuracy=accuracies[id(c)].accuracy,
                agreement=accuracies[id(c)].agreement,
                insertion_auc=means["insertion_auc"],
                deletion_auc=means["deletion_auc"],
                insertion_minus_deletion=means["insertion_minus_deletion"],
                shapley_pearson=means["pearson"],
                forward_passes=result.forward_passes,
                ms_per_image=result.ms_per_image,
                metrics=result.metrics,
            )
        )
    model = wrapped[id(checkpoint)]
    curve = (
        budget_curve(model, batch, config, reference=references[id(model)][0], progress=progress)
        if config.budgets
        else []
    )
    single = {
        r.method: {"pearson": r.shapley_pearson, "insertion_minus_deletion": r.insertion_minus_deletion}
        for r in rows
        if r.forward_passes == 1 and r.method not in ("random", "rollout")
    }
    equivalent = {
        metric: equivalent_budget(curve, metric, single[name][metric])
        for metric in ("pearson", "insertion_minus_deletion")
        if curve
    }
    figures = []
    if curve:
        plot_budget_curve(curve, single, out / "budget_curve.png")
        caption = "Kernel SHAP on the model at each budget; dashed: single-pass methods"
        figures.append(Figure(path="budget_curve.png", caption=caption))
    if "lambda_curve" in checkpoint.meta.explanation:
        plot_lambda_curve(checkpoint.meta.explanation["lambda_curve"], lam, out / "lambda_curve.png")
        figures.append(Figure(path="lambda_curve.png", caption="how λ was chosen"))
    _method_grid(methods, checkpoint, batch, out / "examples.png")
    figures.append(Figure(path="examples.png", caption="example maps of the predicted class, per method"))
    report = Report(
        title=title or f"Evaluation of {name} on {data}",
        data=data,
        lambda_=lam,
        rows=rows,
        figures=figures,
        details={
            "kernel_shap_budget_curve": curve,
            "equivalent_kernel_shap_budget": equivalent,
            **reference_errors,
            "suite": config.model_dump(),
        },
        notes=[
            f"explanation metrics on {len(batch.images)} test images, accuracy and agreement on the whole "
            "test split; ± is half the 95 % bootstrap interval; best per column in bold",
            f"fidelity: Pearson with Kernel SHAP-{config.reference_budget} of each row's own model "
            f"({readout} read-out game); insertion/deletion on probabilities by attention masking",
            f"baselines explain {'the unedited model' if reference else 'the model'}; agreement is with "
            f"{'the unedited model' if reference else 'the model'}",
        ],
    )
    if equivalent:
        report.notes.append(
            f"equivalent Kernel SHAP budget of {name}'s single pass: "
            + ", ".join(f"{k} {_budget(v, config.budgets)}" for k, v in equivalent.items())
        )
    report.write(out)
    return report


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
