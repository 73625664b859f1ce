"""Evaluating a checkpoint on data: the ``model`` row of a report."""

from __future__ import annotations

from rich.progress import Progress

from explainvec.evaluation.accuracy import predict_logits, top1_accuracy
from explainvec.evaluation.report import ReportRow
from explainvec.models.checkpoint import Checkpoint


def evaluate_checkpoint(
    checkpoint: Checkpoint,
    data: str,
    *,
    method: str = "model",
    reference: Checkpoint | None = None,
    size: int | None = None,
    masks: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: Progress | None = None,
) -> ReportRow:
    """Accuracy on the test split, and agreement of top-1 predictions with ``reference`` when given."""
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
