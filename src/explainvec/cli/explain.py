"""``explainvec explain``: heatmaps and raw attributions for image files, folders or embedded data."""

from __future__ import annotations

from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors
from explainvec.evaluation.explain_files import explain_to_folder, image_items
from explainvec.io import output_folder
from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.device import resolve_device
from explainvec.models.self_explaining import SelfExplainingViT


@app.command("explain")
@handle_errors
def explain_command(
    images: list[Path] = typer.Argument(None, help="Image files or folders of images."),
    model: Path = typer.Option(..., help="Checkpoint (any: prediction-only models give the λ = 0 map)."),
    out: Path = typer.Option(..., help="Folder for <image>.png overlays and explanations.json."),
    data: str | None = typer.Option(None, help="Also explain test images of synthetic:<domain>."),
    count: int = typer.Option(8, help="With --data: how many test images."),
    top_k: int = typer.Option(3, help="Classes shown per image (predicted first)."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an OUT that already holds files."),
) -> None:
    """Predict and explain images in one forward pass; write heatmap PNGs and raw P × C maps."""
    torch_device = resolve_device(device)
    checkpoint = load_checkpoint(model)
    sem = SelfExplainingViT.from_checkpoint(checkpoint).eval()
    items = image_items(checkpoint, images or [], data=data, count=count)
    with output_folder(out, overwrite=overwrite):
        path = explain_to_folder(
            sem, checkpoint.meta.preprocess, items, out, top_k=top_k, device=torch_device
        )
    console.print(f"explained {len(items)} images: {out}/*.png and {path}")
