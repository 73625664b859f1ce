"""``explainvec evaluate``: a report on a checkpoint's test split."""

from __future__ import annotations

from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.evaluation.evaluate import evaluate_checkpoint
from explainvec.evaluation.report import Report
from explainvec.models.checkpoint import load_checkpoint


@app.command("evaluate")
@handle_errors
def evaluate_command(
    model: Path = typer.Option(..., help="Checkpoint to evaluate."),
    data: str = typer.Option(..., help="synthetic:<domain> or an image folder."),
    out: Path = typer.Option(..., help="Folder for report.json and report.md."),
    reference: Path | None = typer.Option(None, help="Unedited model: report prediction agreement with it."),
    masks: str | None = typer.Option(None, help="Mask folder beside an image folder."),
    size: int | None = typer.Option(None, help="Synthetic data only: test images."),
    device: str = typer.Option("cpu"),
) -> None:
    """Evaluate MODEL on the test split of DATA and write DIR/report.json and DIR/report.md."""
    checkpoint = load_checkpoint(model)
    reference_checkpoint = load_checkpoint(reference) if reference else None
    with progress_bar() as progress:
        row = evaluate_checkpoint(
            checkpoint,
            data,
            reference=reference_checkpoint,
            size=size,
            masks=masks,
            device=device,
            progress=progress,
        )
    report = Report(title=f"Evaluation of {model.name}", data=data, rows=[row])
    path = report.write(out)
    console.print(report.to_markdown(), highlight=False, markup=False)
    console.print(f"wrote {path}")
