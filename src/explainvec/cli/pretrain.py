"""``explainvec pretrain``: a base ViT trained from scratch on any data source."""

from __future__ import annotations

from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.models.checkpoint import save_checkpoint
from explainvec.training.config import TrainConfig
from explainvec.training.pretrain import PRETRAIN_CONFIG, PRETRAIN_DATA, architecture_of, pretrain


@app.command("pretrain")
@handle_errors
def pretrain_command(
    out: Path = typer.Option(..., help="Base checkpoint to write (.safetensors)."),
    data: str = typer.Option(
        PRETRAIN_DATA, help="synthetic:<domain>, fashion:<subset>[@<folder>] or an image folder."
    ),
    preset: str = typer.Option(
        "4x4", help="Architecture and patch grid: 4x4, 7x7 (32/56 px), 28px-4x4 or 28px-7x7 (28 px)."
    ),
    image_size: int = typer.Option(None, min=1, help="Input side in pixels (default: the preset's)."),
    patch_size: int = typer.Option(None, min=1, help="Patch side in pixels (default: the preset's)."),
    patch_drop: bool = typer.Option(
        True, help="Patch dropping while pretraining (--no-patch-drop: as ordinary supervised ViTs)."
    ),
    epochs: int = typer.Option(PRETRAIN_CONFIG.epochs, min=1),
    lr: float = typer.Option(PRETRAIN_CONFIG.lr),
    train_size: int = typer.Option(
        PRETRAIN_CONFIG.train_size,
        min=1,
        help="Training images (synthetic: drawn; Fashion-MNIST: the first N).",
    ),
    seed: int = typer.Option(0),
) -> None:
    """Pretrain a tiny timm ViT from scratch and write a base checkpoint."""
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another --out (nothing was written)")
    architecture = architecture_of(preset, image_size=image_size, patch_size=patch_size)
    settings = {"epochs": epochs, "lr": lr, "train_size": train_size, "seed": seed}
    config = TrainConfig(
        **{**PRETRAIN_CONFIG.model_dump(), **settings, "keep_min": 0.5 if patch_drop else 1.0}
    )
    with progress_bar() as progress:
        checkpoint = pretrain(architecture, config, data=data, progress=progress)
    save_checkpoint(out, checkpoint)
    console.print(
        f"wrote {out} (fingerprint {checkpoint.meta.base_fingerprint}, "
        f"val accuracy {checkpoint.meta.metrics['val_accuracy']:.3f})"
    )
