"""``explainvec vector`` and ``explainvec apply``: make τ from two checkpoints, add λ·τ to a model."""

from __future__ import annotations

from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors
from explainvec.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from explainvec.vectors import ExplainabilityVector


@app.command("vector")
@handle_errors
def vector_command(
    explain: Path = typer.Option(..., help="Self-explaining source checkpoint."),
    predict: Path = typer.Option(..., help="Prediction-only source checkpoint (same base)."),
    out: Path = typer.Option(..., help="Vector to write (.safetensors + .json)."),
) -> None:
    """τ = EXPLAIN − PREDICT over backbone parameters (heads and buffers left out)."""
    vector = ExplainabilityVector.from_checkpoints(load_checkpoint(explain), load_checkpoint(predict))
    vector.save(out)
    console.print(f"wrote {out} (norm {vector.norm():.4f}, source {vector.meta['source_data']})")


@app.command("apply")
@handle_errors
def apply_command(
    model: Path = typer.Option(..., help="Target prediction-only checkpoint."),
    vector: Path = typer.Option(..., help="Explainability vector."),
    out: Path = typer.Option(..., help="Edited checkpoint to write."),
    lam: float = typer.Option(1.0, help="Scale λ of the vector."),
    force: bool = typer.Option(False, help="Apply even if the base fingerprints differ."),
) -> None:
    """Write TARGET + λ·τ: a model that predicts and explains in one pass, no training."""
    target = load_checkpoint(model)
    tau = ExplainabilityVector.load(vector)
    tau.check_compatible(target, force=force)
    edited_meta = target.meta.model_copy(
        update={
            "kind": "edited",
            "explanation": {
                **tau.meta.get("explanation", {}),
                "lambda": lam,
                "vector_source": tau.meta["source_data"],
            },
        }
    )
    save_checkpoint(out, Checkpoint(tau.apply_to(target.model, lam), edited_meta))
    console.print(f"wrote {out} = {model.name} + {lam}·τ")
