"""``explainvec pretrain``: the base ViT on the embedded mixture corpus."""

from __future__ import annotations

from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.models.checkpoint import save_checkpoint
from explainvec.training.config import TrainConfig
from explainvec.training.pretrain import PRETRAIN_CONFIG, pretrain


@app.command("pretrain")
@handle_errors
def pretrain_command(
    out: Path = typer.Option(..., help="Base checkpoint to write (.safetensors)."),
    preset: str = typer.Option("4x4", help="Patch grid: 4x4 (16 patches) or 7x7 (49 patches)."),
    epochs: int = typer.Option(PRETRAIN_CONFIG.epochs),
    lr: float = typer.Option(PRETRAIN_CONFIG.lr),
    train_size: int = typer.Option(
        PRETRAIN_CONFIG.train_size, help="Training images drawn from the mixture."
    ),
    seed: int = typer.Option(0),
) -> None:
    """Pretrain a tiny timm ViT on the synthetic mixture corpus and write a base checkpoint."""
    config = TrainConfig(
        **{**PRETRAIN_CONFIG.model_dump(), "epochs": epochs, "lr": lr, "train_size": train_size, "seed": seed}
    )
    with progress_bar() as progress:
        checkpoint = pretrain(preset, config, progress=progress)
    save_checkpoint(out, checkpoint)
    console.print(
        f"wrote {out} (fingerprint {checkpoint.meta.base_fingerprint}, "
        f"val accuracy {checkpoint.meta.metrics['val_accuracy']:.3f})"
    )
