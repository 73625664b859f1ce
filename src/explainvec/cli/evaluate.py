"""``explainvec evaluate``: the evaluation suite's report on a checkpoint's test split."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.evaluation.baselines import get_attributor
from explainvec.evaluation.evaluate import BASELINES, suite_report
from explainvec.evaluation.suite import SuiteConfig
from explainvec.io import output_folder
from explainvec.models.checkpoint import check_outputs_finite, load_checkpoint
from explainvec.models.device import resolve_device
from explainvec.training.config import TrainConfig
from explainvec.training.engine import launch
from explainvec.vectors import ExplainabilityVector


@app.command("evaluate")
@handle_errors
def evaluate_command(
    model: Path = typer.Option(..., help="Checkpoint to evaluate."),
    data: str = typer.Option(..., help="synthetic:<domain> or an image folder."),
    out: Path = typer.Option(..., help="Folder for report.json, report.md, report.html and figures."),
    reference: Path | None = typer.Option(
        None, help="Unedited model: agreement is measured against it, λ = 0 and the baselines run on it."
    ),
    oracle: Path | None = typer.Option(None, help="A self-explaining model trained on DATA itself."),
    vector: Path | None = typer.Option(
        None,
        help="The vector applied to MODEL: adds a norm-matched random-vector control (needs --reference).",
    ),
    baselines: str = typer.Option(
        ",".join(BASELINES),
        help="Comma-separated: kernelshap<N>, random, rollout, integrated_gradients; '' = none.",
    ),
    images: int = typer.Option(64, min=2, help="Test images for the explanation metrics."),
    reference_budget: int = typer.Option(2048, min=4, help="Kernel SHAP budget of the fidelity reference."),
    masks: str | None = typer.Option(None, help="Mask folder beside an image folder."),
    size: int | None = typer.Option(None, help="Synthetic data only: test images for accuracy."),
    labels: Path | None = typer.Option(
        None,
        help="A label cache of one compared model on DATA's test split (explainvec labels --split test, same "
        "budget and read-out): its values are that model's reference, not computed again.",
    ),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto"),
    devices: int = typer.Option(1, help="Processes per node sharing the Kernel SHAP references."),
    num_nodes: int = typer.Option(1, help="Nodes (launch with fabric run, torchrun or SLURM)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an OUT that already holds files."),
) -> None:
    """Evaluate MODEL (and baselines) on the test split of DATA: accuracy, agreement, insertion/deletion,
    fidelity to Shapley values, localisation, sensitivity-n and cost, with 95 % bootstrap intervals."""
    torch_device = resolve_device(device)
    names = tuple(b.strip() for b in baselines.split(",") if b.strip())
    for name in names:
        get_attributor(name)  # unknown names fail before any work
    if vector is not None and reference is None:
        raise typer.BadParameter("--vector needs --reference (the model it was applied to)")
    checkpoint = load_checkpoint(model)
    check_outputs_finite(checkpoint.model, f"refusing to evaluate {model}")
    fabric = None
    if devices > 1 or num_nodes > 1:
        with output_folder(out, overwrite=overwrite):
            pass  # refused here, before any process starts, rather than on rank 0 alone
        fabric = launch(TrainConfig(device=str(torch_device), devices=devices, num_nodes=num_nodes))
        torch_device = fabric.device
    main = fabric is None or fabric.is_global_zero
    holding = output_folder(out, overwrite=overwrite) if main else nullcontext()
    with holding, progress_bar(enabled=main) as progress:
        report = suite_report(
            checkpoint,
            data,
            out,
            reference=load_checkpoint(reference) if reference else None,
            oracle=load_checkpoint(oracle) if oracle else None,
            vector=ExplainabilityVector.load(vector) if vector else None,
            baselines=names,
            images=images,
            size=size,
            masks=masks,
            config=SuiteConfig(reference_budget=reference_budget),
            title=f"Evaluation of {model.name}",
            labels=labels,
            shards=fabric,
            device=torch_device,
            progress=progress,
        )
    if report is None:  # another process of a sharded run: rank 0 writes the report
        return
    console.print(report.to_markdown(), highlight=False, markup=False)
    console.print(f"wrote {out / 'report.json'}, {out / 'report.html'}")
