"""``explainvec explain``: heatmaps and raw attributions for image files, folders or embedded data."""

from __future__ import annotations

from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.evaluation.explain_files import INDEX, MAPS, explain_to_folder, image_items
from explainvec.io import output_folder
from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.device import resolve_device
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.vocabulary import MapsFormat, Overlays


@app.command("explain")
@handle_errors
def explain_command(
    images: list[Path] = typer.Argument(None, help="Image files or folders of images."),
    model: Path = typer.Option(..., help="Checkpoint (any: prediction-only models give the λ = 0 map)."),
    out: Path = typer.Option(..., help=f"Folder for {INDEX}, {MAPS} and <image>.png overlays."),
    data: str | None = typer.Option(None, help="Also explain test images of synthetic:<domain>."),
    count: int = typer.Option(8, help="With --data: how many test images."),
    overlays: Overlays = typer.Option("topk", help="Overlay PNGs: top1, topk (--top-k classes) or none."),
    top_k: int = typer.Option(3, help="Classes recorded (and drawn by --overlays topk) per image."),
    maps: MapsFormat = typer.Option("npy", help=f"Raw P × C maps: npy ({MAPS}) or json (small runs)."),
    batch_size: int = typer.Option(64, min=1, help="Images per forward pass."),
    workers: int = typer.Option(2, min=0, help="Processes reading images and drawing overlays (0: none)."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an OUT that already holds files."),
) -> None:
    """Predict and explain images in one forward pass each, in batches; write the raw P × C maps, an index
    of images and predictions, and heatmap PNGs."""
    torch_device = resolve_device(device)
    checkpoint = load_checkpoint(model)
    sem = SelfExplainingViT.from_checkpoint(checkpoint).eval()
    inputs = image_items(checkpoint, images or [], data=data, count=count)
    with output_folder(out, overwrite=overwrite), progress_bar(unit="images") as tracker:
        path = explain_to_folder(
            sem,
            checkpoint.meta.preprocess,
            inputs,
            out,
            top_k=top_k,
            overlays=overlays,
            maps=maps,
            batch_size=batch_size,
            workers=workers,
            device=torch_device,
            progress=tracker,
        )
    drawn = "" if overlays == "none" else f"{out}/*.png, "
    raw = "" if maps == "json" else f" and {out / MAPS}"
    console.print(f"explained {len(inputs)} images: {drawn}{path}{raw}")
