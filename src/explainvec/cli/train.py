"""``explainvec train``: fine-tune a base checkpoint on a domain or an image folder."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.models.checkpoint import load_checkpoint, save_checkpoint
from explainvec.training.config import TrainConfig
from explainvec.training.finetune import finetune

DEFAULTS = TrainConfig()


class Mode(str, Enum):
    predict = "predict"


@app.command("train")
@handle_errors
def train_command(
    base: Path = typer.Option(..., help="Base checkpoint every model starts from."),
    data: str = typer.Option(..., help="synthetic:<domain> or an image folder root/<class>/*.png."),
    out: Path = typer.Option(..., help="Checkpoint to write (.safetensors)."),
    mode: Mode = typer.Option(Mode.predict, help="predict: classification only."),
    masks: str | None = typer.Option(
        None, help="Mask folder beside an image folder (masks/<class>/<name>.png)."
    ),
    epochs: int = typer.Option(DEFAULTS.epochs),
    lr: float = typer.Option(DEFAULTS.lr),
    batch_size: int = typer.Option(DEFAULTS.batch_size),
    train_size: int = typer.Option(DEFAULTS.train_size, help="Synthetic data only: training images."),
    keep_min: float = typer.Option(DEFAULTS.keep_min, help="Patch dropping: keep at least this share."),
    freeze_head: bool = typer.Option(False, help="Train the backbone only."),
    seed: int = typer.Option(0),
    device: str = typer.Option("cpu"),
) -> None:
    """Fine-tune BASE on DATA and write the model with its sidecar."""
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        train_size=train_size,
        keep_min=keep_min,
        freeze_head=freeze_head,
        seed=seed,
        device=device,
    )
    base_checkpoint = load_checkpoint(base)
    with progress_bar() as progress:
        checkpoint = finetune(base_checkpoint, data, config, masks=masks, progress=progress)
    save_checkpoint(out, checkpoint)
    console.print(f"wrote {out} (val accuracy {checkpoint.meta.metrics['val_accuracy']:.3f})")
