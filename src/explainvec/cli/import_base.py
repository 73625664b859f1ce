"""``explainvec import``: a base checkpoint from a timm ViT, an open_clip CLIP model or a Hugging Face
folder."""

from __future__ import annotations

from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors
from explainvec.data.sources import data_class_names
from explainvec.models.backbones import TIMM_PREFIX, timm_base
from explainvec.models.checkpoint import check_checkpoint_output, save_checkpoint
from explainvec.models.clip import clip_base
from explainvec.models.huggingface import HF_PREFIX, hf_base

CLIP_PREFIX = "clip:"


@app.command("import")
@handle_errors
def import_command(
    spec: str = typer.Argument(
        ...,
        help="timm:<model name> (timm:vit_base_patch16_224), clip:<open_clip name or config .json>, or "
        "hf:<save_pretrained folder> (ViTForImageClassification or CLIPModel).",
    ),
    out: Path = typer.Option(..., help="Base checkpoint to write (.safetensors)."),
    weights: Path | None = typer.Option(
        None, help="Local weights: .safetensors, or a .pth/.pt/.bin state dict (read weights-only)."
    ),
    img_size: int | None = typer.Option(None, help="Input size (default: the model's; positions resampled)."),
    classes: str | None = typer.Option(
        None,
        help="clip: (and an hf: CLIPModel): the data whose class names make the zero-shot head "
        "(synthetic:<domain> or a folder); an hf: ViT: class names instead of config.id2label.",
    ),
    template: str = typer.Option("a photo of a {}.", help="clip: prompt template of the zero-shot head."),
    allow_download: bool = typer.Option(
        False, help="timm without --weights: fetch the pretrained weights from the Hugging Face Hub."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUT."),
) -> None:
    """Turn a pretrained timm or Hugging Face ViT, or a CLIP image tower with a zero-shot head, into a base
    checkpoint that train, vector and apply take as --base."""
    check_checkpoint_output(out, inputs=(weights,), overwrite=overwrite)
    if spec.startswith(HF_PREFIX):
        if weights is not None or img_size is not None:
            raise ValueError(
                "hf: reads the folder's model.safetensors at its own size: no --weights or --img-size"
            )
        checkpoint = hf_base(spec, data_class_names(classes) if classes else None, template=template)
    elif spec.startswith(CLIP_PREFIX):
        if weights is None or classes is None:
            raise ValueError("clip: needs --weights (an open_clip checkpoint file) and --classes (the data)")
        names = data_class_names(classes)
        model = spec[len(CLIP_PREFIX) :]
        checkpoint = clip_base(model, weights, names, template=template, image_size=img_size)
    elif spec.startswith(TIMM_PREFIX):
        checkpoint = timm_base(spec, weights=weights, allow_download=allow_download, image_size=img_size)
    else:
        raise ValueError(f"{spec!r} should start with {TIMM_PREFIX}, {CLIP_PREFIX} or {HF_PREFIX}")
    save_checkpoint(out, checkpoint)
    grid = "x".join(map(str, checkpoint.model.patch_embed.grid_size))
    console.print(f"wrote {out} ({spec}, {grid} patches, fingerprint {checkpoint.meta.base_fingerprint})")
