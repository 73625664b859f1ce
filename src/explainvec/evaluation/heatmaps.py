"""Heatmap overlays: the image, and for each shown class its signed attribution map on top of it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import TwoSlopeNorm
from PIL import Image

from explainvec.data.preprocess import Preprocess
from explainvec.io import atomic_write
from explainvec.models.self_explaining import Explanation


def to_display(image: torch.Tensor, preprocess: Preprocess) -> np.ndarray:
    """A normalised ``[3, H, W]`` model input back to an ``H × W × 3`` picture in ``[0, 1]``."""
    mean = torch.tensor(preprocess.mean).view(3, 1, 1)
    std = torch.tensor(preprocess.std).view(3, 1, 1)
    return (image.cpu() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def overlay(
    images: torch.Tensor,
    explanation: Explanation,
    preprocess: Preprocess,
    class_index: int | torch.Tensor | None = None,
    *,
    smooth: bool = True,
    alpha: float = 0.5,
) -> list[Image.Image]:
    """Each image ``[B, 3, H, W]`` (model inputs) with its heatmap of ``class_index`` (default: predicted)
    blended over it, as RGB pictures: red is evidence for the class, blue against, on a scale centred at 0
    per image; ``smooth`` upsamples bilinearly (grad-cam's look), else one block per patch."""
    maps = explanation.heatmap(class_index, smooth=smooth).cpu().numpy()
    pictures = []
    for image, heatmap in zip(images, maps, strict=True):
        limit = max(float(np.abs(heatmap).max()), 1e-8)
        colours = plt.get_cmap("RdBu_r")(TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)(heatmap))[..., :3]
        blended = (1 - alpha) * to_display(image, preprocess) + alpha * colours
        pictures.append(Image.fromarray((blended * 255).round().astype(np.uint8)))
    return pictures


def plot_overlays(
    picture: np.ndarray,
    heatmaps: list[np.ndarray],
    titles: list[str],
    path: str | Path,
    *,
    grid: tuple[int, int],
    suptitle: str = "",
    mask: np.ndarray | None = None,
) -> Path:
    """Write a PNG: the picture (and its evidence mask), then each heatmap over the picture.

    Colours share one scale centred at 0 (red = evidence for the class, blue = against) over a grey
    copy of the picture; the patch grid is drawn so each cell reads as one Shapley player.
    """
    panels = 1 + (mask is not None) + len(heatmaps)
    fig, axes = plt.subplots(1, panels, figsize=(2.6 * panels + 0.8, 3.0), squeeze=False)
    axes = axes[0]
    axes[0].imshow(picture, interpolation="nearest")
    axes[0].set_title("image", fontsize=9)
    if mask is not None:
        axes[1].imshow(mask, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[1].set_title("evidence mask", fontsize=9)
    limit = max(float(np.abs(np.stack(heatmaps)).max()), 1e-8)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    image = None
    for ax, heatmap, title in zip(axes[panels - len(heatmaps) :], heatmaps, titles, strict=True):
        ax.imshow(picture.mean(-1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        image = ax.imshow(heatmap, cmap="RdBu_r", norm=norm, alpha=0.65, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    height, width = picture.shape[:2]
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        for k in range(1, grid[1]):
            ax.axvline(k * width / grid[1] - 0.5, color="white", linewidth=0.4, alpha=0.5)
        for k in range(1, grid[0]):
            ax.axhline(k * height / grid[0] - 0.5, color="white", linewidth=0.4, alpha=0.5)
    fig.colorbar(image, ax=list(axes), fraction=0.025, pad=0.02, label="attribution")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return Path(path)
