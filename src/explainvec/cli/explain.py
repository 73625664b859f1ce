"""``explainvec explain``: heatmaps and raw attributions for image files, folders or embedded data."""

from __future__ import annotations

from pathlib import Path

import typer
from timm.data import create_transform

from explainvec.cli.app import app, console, handle_errors
from explainvec.data.folder import IMAGE_SUFFIXES, open_rgb
from explainvec.evaluation.explain_files import ImageItem, explain_to_folder
from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.device import resolve_device
from explainvec.models.self_explaining import SelfExplainingViT


def _files(inputs: list[Path]) -> list[Path]:
    files = []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"image {path} does not exist")
    return files


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
) -> None:
    """Predict and explain images in one forward pass; write heatmap PNGs and raw P × C maps."""
    torch_device = resolve_device(device)
    checkpoint = load_checkpoint(model)
    preprocess = checkpoint.meta.preprocess
    sem = SelfExplainingViT.from_checkpoint(checkpoint).eval()
    transform = create_transform(**preprocess.timm_kwargs())
    files = _files(images or [])
    items = [ImageItem(f"{i:03d}-{f.stem}", transform(open_rgb(f))) for i, f in enumerate(files)]
    if data:
        test = checkpoint.load_split(data, "test", size=count)
        for i in range(min(count, len(test))):
            image, label, mask = test[i]
            items.append(ImageItem(f"{data.split(':')[-1]}-{i:03d}-{test.class_names[label]}", image,
                                   mask if test.has_masks else None))  # fmt: skip
    if not items:
        raise ValueError("nothing to explain: give image files or folders, or --data")
    path = explain_to_folder(sem, preprocess, items, out, top_k=top_k, device=torch_device)
    console.print(f"explained {len(items)} images: {out}/*.png and {path}")
