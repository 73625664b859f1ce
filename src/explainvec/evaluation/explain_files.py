"""Explaining images into a folder: one heatmap PNG per image and one JSON with the raw maps."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from timm.data import create_transform

from explainvec.data.folder import IMAGE_SUFFIXES, open_rgb
from explainvec.data.preprocess import Preprocess
from explainvec.errors import ExplainvecError, OutputError
from explainvec.evaluation.heatmaps import plot_overlays, to_display
from explainvec.io import write_json
from explainvec.models.checkpoint import Checkpoint
from explainvec.models.self_explaining import Explanation, SelfExplainingViT


@dataclass
class ImageItem:
    """An image to explain: a name for its files, the model input, and an optional evidence mask."""

    name: str
    image: torch.Tensor  # [3, H, W], preprocessed
    mask: torch.Tensor | None = None


def image_items(
    checkpoint: Checkpoint, inputs: list[Path], *, data: str | None = None, count: int = 8
) -> list[ImageItem]:
    """What to explain: image files and every image under folders in ``inputs``, preprocessed for the
    model, then the first ``count`` test images of ``data`` (with their masks)."""
    if data and count < 1:
        raise ExplainvecError(f"--count must be at least 1 (got {count})")
    transform = create_transform(**checkpoint.meta.preprocess.timm_kwargs())
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"image {path} does not exist")
    items = [ImageItem(f"{i:03d}-{printable(f.stem)}", transform(open_rgb(f))) for i, f in enumerate(files)]
    if data:
        test = checkpoint.load_split(data, "test", size=count)
        for i in range(min(count, len(test))):
            image, label, mask = test[i]
            name = f"{data.split(':')[-1]}-{i:03d}-{test.class_names[label]}"
            items.append(ImageItem(name, image, mask if test.has_masks else None))
    if not items:
        raise ValueError("nothing to explain: give image files or folders, or --data")
    return items


def printable(name: str) -> str:
    """A file name as text that can be drawn and stored as JSON: bytes that are not UTF-8 (kept by Python
    as surrogates) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@torch.no_grad()
def explain_batches(
    model: SelfExplainingViT, items: list[ImageItem], batch_size: int, device: str | torch.device
) -> list[Explanation]:
    """The model's explanations of ``items`` in batches, on CPU; OutputError naming the first image whose
    logits or attributions hold NaN or Inf."""
    model.to(device)
    explanations = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        explanation = model(torch.stack([item.image for item in chunk]).to(device))
        explanation = replace(
            explanation, logits=explanation.logits.cpu(), attributions=explanation.attributions.cpu()
        )
        logits_finite = explanation.logits.isfinite().all(dim=1)
        finite = logits_finite & explanation.attributions.isfinite().flatten(1).all(dim=1)
        if not finite.all():
            bad = chunk[int((~finite).nonzero()[0])].name
            raise OutputError(
                f"the model's output for image {bad} holds NaN or Inf (its weights are too large, e.g. a "
                "vector added with a huge λ); nothing was written"
            )
        explanations.append(explanation)
    return explanations


def explain_to_folder(
    model: SelfExplainingViT,
    preprocess: Preprocess,
    items: list[ImageItem],
    out: str | Path,
    *,
    top_k: int = 3,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    smooth: bool = False,
) -> Path:
    """Write ``out/<name>.png`` overlays (predicted class first, then the next ``top_k − 1``; ``smooth``:
    bilinearly upsampled maps under the patch grid, else one block per patch) and
    ``out/explanations.json`` with every image's ``P × C`` attributions; returns the JSON path.
    An image holding NaN or Inf, or one the model's output for is not finite, is refused (an
    ExplainvecError naming it) before anything is written. ``model`` is moved to ``device`` and the images
    run there in batches; what is written comes from CPU."""
    if top_k < 1:
        raise ExplainvecError(f"--top-k must be at least 1 (got {top_k})")
    for item in items:
        if not torch.isfinite(item.image).all():
            raise ExplainvecError(
                f"image {item.name} holds NaN or Inf after preprocessing; nothing was explained"
            )
    out = Path(out)
    records = []
    explanations = explain_batches(model, items, batch_size, device)
    for start, explanation in zip(range(0, len(items), batch_size), explanations, strict=True):
        chunk = items[start : start + batch_size]
        probabilities = explanation.probabilities
        k = min(top_k, probabilities.shape[1])
        for row, item in enumerate(chunk):
            top = probabilities[row].topk(k).indices.tolist()
            heatmaps = [explanation.heatmap(c, smooth=smooth)[row].numpy() for c in top]
            titles = [f"{model.class_names[c]} p={probabilities[row, c]:.2f}" for c in top]
            plot_overlays(
                to_display(item.image, preprocess),
                heatmaps,
                titles,
                out / f"{item.name}.png",
                grid=explanation.grid,
                suptitle=f"{item.name}: predicted {model.class_names[top[0]]}",
                mask=None if item.mask is None else item.mask.numpy(),
            )
            records.append(
                {
                    "name": item.name,
                    "image": f"{item.name}.png",
                    "predicted": model.class_names[top[0]],
                    "top_k": {model.class_names[c]: probabilities[row, c].item() for c in top},
                    "attributions": explanation.attributions[row].tolist(),
                }
            )
    return write_json(
        out / "explanations.json",
        {
            "class_names": model.class_names,
            "grid": list(model.vit.patch_embed.grid_size),
            "readout": model.readout,
            "attributions": "P × C per image, rows in reading order of the patch grid",
            "images": records,
        },
    )
