"""``explainvec vector`` and ``explainvec apply``: make τ from two checkpoints, add λ·τ to a model."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.models.adapter import has_adapter
from explainvec.models.checkpoint import check_checkpoint_output, load_checkpoint, save_checkpoint
from explainvec.models.device import resolve_device
from explainvec.training.config import TrainConfig
from explainvec.transfer import apply_vector
from explainvec.vectors import ExplainabilityVector, train_shared_vector
from explainvec.vectors.shared import PRETRAINING, SHARED_COALITIONS, SHARED_EPOCHS, SHARED_LR
from explainvec.vocabulary import DEFAULT_ADAPTER, DEFAULT_LAMBDA_CRITERION, AdapterChoice, LambdaCriterion

OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing OUT (never one of the inputs).")


@app.command("vector")
@handle_errors
def vector_command(
    predict: list[Path] = typer.Option(..., help="Prediction-only source checkpoint(s), all from one base."),
    out: Path = typer.Option(..., help="Vector to write (.safetensors + .json)."),
    explain: Path | None = typer.Option(
        None, help="Self-explaining source checkpoint: τ = EXPLAIN − PREDICT."
    ),
    base: Path | None = typer.Option(None, help="Without --explain: train one τ shared by every PREDICT."),
    adapter: AdapterChoice = typer.Option(
        DEFAULT_ADAPTER, help="Shared τ: the explanation adapter τ carries (none: the backbone only)."
    ),
    backbone: bool = typer.Option(
        False, "--backbone/--adapter-only", help="Shared τ: train the backbone too (predictions may change)."
    ),
    alpha: float = typer.Option(0.05, help="Shared τ: weight of the explanation loss."),
    coalitions: int = typer.Option(SHARED_COALITIONS, help="Shared τ: K coalitions per image (the bank)."),
    bank: bool = typer.Option(
        True,
        "--bank/--fresh-coalitions",
        help="Shared τ: each image's coalitions drawn and evaluated once, reused every epoch.",
    ),
    game_data: str = typer.Option(
        PRETRAINING,
        help="Shared, adapter-only τ: images (data spec or image folder) every source model's game is "
        "played on, labels unused; 'pretraining': the base's pretraining data where the base records it "
        "(else each source's own); 'own': each source's own.",
    ),
    epochs: int = typer.Option(SHARED_EPOCHS, help="Shared τ: epochs over each source's training images."),
    lr: float = typer.Option(SHARED_LR, help="Shared τ: learning rate."),
    train_size: int = typer.Option(2000, help="Synthetic data only: training images per source."),
    device: str = typer.Option("cpu", help="Shared τ: cpu, cuda, cuda:N or auto."),
    overwrite: bool = OVERWRITE,
) -> None:
    """τ = EXPLAIN − PREDICT over backbone parameters (heads and buffers left out); or, with --base and
    no --explain, one τ trained so that every PREDICT + τ explains itself (the shared recipe; by default
    an explanation adapter alone, which never changes a prediction: give several source models, the base
    itself among them when its training data is known)."""
    if explain is not None and len(predict) != 1:
        raise ValueError("--explain takes exactly one --predict (its prediction-only twin)")
    if explain is None and base is None:
        raise ValueError("give --explain (difference of two models) or --base (train a shared τ)")
    check_checkpoint_output(out, inputs=(*predict, explain, base), overwrite=overwrite)
    device = str(resolve_device(device))
    if explain is not None:
        vector = ExplainabilityVector.from_checkpoints(load_checkpoint(explain), load_checkpoint(predict[0]))
    else:
        config = TrainConfig(epochs=epochs, lr=lr, train_size=train_size, keep_min=1.0, device=device)
        with progress_bar() as progress:
            vector = train_shared_vector(
                load_checkpoint(base),
                [load_checkpoint(p) for p in predict],
                config,
                alpha=alpha,
                num_coalitions=coalitions,
                bank=bank,
                adapter=None if adapter == "none" else adapter,
                backbone=backbone,
                game_data=None if game_data == "own" else game_data,
                progress=progress,
            )
    vector.save(out)
    console.print(f"wrote {out} (norm {vector.norm():.4f}, source {vector.meta.source_data})")


@app.command("apply")
@handle_errors
def apply_command(
    model: Path = typer.Option(..., help="Target prediction-only checkpoint."),
    vector: Path = typer.Option(..., help="Explainability vector."),
    out: Path = typer.Option(..., help="Edited checkpoint to write."),
    lam: str = typer.Option("1.0", help="Scale λ of the vector, or 'auto' (needs --data; uses no labels)."),
    data: str | None = typer.Option(None, help="With --lam auto: target data whose val images choose λ."),
    images: int = typer.Option(128, help="With --lam auto: how many val images."),
    min_agreement: float = typer.Option(0.99, help="With --lam auto: least top-1 agreement with TARGET."),
    lam_criterion: LambdaCriterion = typer.Option(
        DEFAULT_LAMBDA_CRITERION,
        help="With --lam auto: shapley_fit (the map's fit to TARGET's own masked outputs, evaluated once) "
        "or insertion_deletion (insertion − deletion at every λ, about 2P masked passes each).",
    ),
    force: bool = typer.Option(
        False, help="Apply even if the base fingerprints differ (never across architectures or patch grids)."
    ),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Write TARGET + λ·τ: a model that predicts and explains in one pass, no training."""
    if lam != "auto":
        try:
            lam = float(lam)
        except ValueError as error:
            raise ValueError(f"--lam must be a number or 'auto', got {lam!r}") from error
        if not math.isfinite(lam):
            raise ValueError(f"--lam must be a finite number, got {lam}")
    elif data is None:
        raise ValueError("--lam auto needs --data (unlabelled target images to choose λ on)")
    check_checkpoint_output(out, inputs=(model, vector), overwrite=overwrite)
    target = load_checkpoint(model)
    tau = ExplainabilityVector.load(vector)
    with progress_bar() as progress:
        edited = apply_vector(
            target,
            tau,
            lam,
            data=data,
            images=images,
            agreement=min_agreement,
            criterion=lam_criterion,
            force=force,
            device=resolve_device(device),
            progress=progress,
        )
    if target.meta.base_fingerprint != tau.meta.base_fingerprint:
        console.print("[yellow]warning:[/] --force: the model and the vector come from different bases")
    explanation = edited.meta.explanation
    if explanation.lambda_curve is not None:
        _print_curve(explanation.lambda_curve, explanation.lam, lam_criterion)
        if explanation.lam == 0:
            console.print(
                f"--lam auto kept λ = 0: no λ > 0 scored better while keeping ≥ {min_agreement:.0%} of "
                f"{model.name}'s predictions, so τ adds nothing here"
                + (" beyond its adapter's starting map" if has_adapter(edited.model) else "")
            )
    save_checkpoint(out, edited)
    console.print(f"wrote {out} = {model.name} + {explanation.lam}·τ")


CURVE_COLUMNS: dict[str, dict[str, str]] = {
    "shapley_fit": {"agreement": "agreement", "score": "fit (R²)", "fit_mse": "fit MSE"},
    "insertion_deletion": {
        "agreement": "agreement",
        "insertion": "insertion",
        "deletion": "deletion",
        "score": "ins − del",
    },
}
"""The λ table's columns per criterion: curve key → heading."""


def _print_curve(curve: list[dict], chosen: float, criterion: str) -> None:
    columns = CURVE_COLUMNS[criterion]
    table = Table("λ", *columns.values(), title=f"λ curve ({criterion}, no labels used)")
    for point in curve:
        cells = [point[k] for k in columns]
        lam = f"{point['lam']:g}" + (" ← chosen" if point["lam"] == chosen else "")
        table.add_row(lam, *(f"{c:.3f}" for c in cells))
    console.print(table)
