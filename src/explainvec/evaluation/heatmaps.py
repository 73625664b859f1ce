"""Heatmap pictures: the image, and for each shown class its signed attribution map on top of it.

Composed with numpy and PIL (no matplotlib figure: one costs tens of milliseconds per image);
matplotlib only supplies the colour map's lookup table.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from explainvec.data.preprocess import Preprocess
from explainvec.models.self_explaining import Explanation

COLOUR_MAP = "RdBu_r"
"""Red is evidence for the class, blue against, white none."""
PANEL = 128
"""Pictures smaller than this many pixels are enlarged by a whole factor (nearest) in overlay files."""
HEATMAP_ALPHA = 0.65
"""How much of an overlay panel is the heatmap; the rest is a grey copy of the picture."""


def to_display(image: torch.Tensor, preprocess: Preprocess) -> np.ndarray:
    """A normalised ``[3, H, W]`` (or ``[B, 3, H, W]``) model input back to ``H × W × 3`` pictures in
    ``[0, 1]``."""
    mean = torch.tensor(preprocess.mean).view(3, 1, 1)
    std = torch.tensor(preprocess.std).view(3, 1, 1)
    return (image.cpu() * std + mean).clamp(0, 1).movedim(-3, -1).numpy()


def display_pictures(images: np.ndarray, preprocess: Preprocess) -> np.ndarray:
    """``to_display`` in numpy: model inputs ``[B, 3, H, W]`` back to pictures ``[B, H, W, 3]`` in [0, 1]."""
    mean = np.asarray(preprocess.mean, dtype=np.float32)
    std = np.asarray(preprocess.std, dtype=np.float32)
    return np.clip(images.transpose(0, 2, 3, 1) * std + mean, 0.0, 1.0)


def upsample(maps: np.ndarray, size: tuple[int, int], *, smooth: bool = False) -> np.ndarray:
    """Patch-grid maps ``[..., gh, gw]`` at ``size`` pixels, as ``Explanation.heatmap`` draws them: one
    block per patch, or ``smooth`` (bilinear, ``align_corners=False``)."""
    rows, cols = (resize_matrix(n, m, smooth) for n, m in zip(maps.shape[-2:], size, strict=True))
    return rows @ maps @ cols.T


def resize_matrix(n_in: int, n_out: int, smooth: bool) -> np.ndarray:
    """The ``n_out × n_in`` matrix that resizes one axis: nearest (``floor(i · n_in / n_out)``), or linear
    with half-pixel centres, clamped at the edges (PyTorch's ``bilinear``, ``align_corners=False``)."""
    out = np.arange(n_out)
    matrix = np.zeros((n_out, n_in), dtype=np.float32)
    if not smooth:
        matrix[out, np.minimum(out * n_in // n_out, n_in - 1)] = 1.0
        return matrix
    source = np.maximum((out + 0.5) * n_in / n_out - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    weight = (source - low).astype(np.float32)
    np.add.at(matrix, (out, low), 1.0 - weight)
    np.add.at(matrix, (out, high), weight)
    return matrix


@functools.cache
def colour_table() -> np.ndarray:
    """``COLOUR_MAP`` as a 256 × 3 float table, looked up once per process."""
    return colormaps[COLOUR_MAP](np.linspace(0.0, 1.0, 256))[:, :3]


def colourise(values: np.ndarray, limit: float) -> np.ndarray:
    """Signed ``values`` as RGB in ``[0, 1]`` (shape ``values.shape + (3,)``) on a scale centred at 0 from
    ``−limit`` to ``limit`` (as matplotlib's ``TwoSlopeNorm`` with symmetric limits, then the colour map)."""
    scaled = 0.5 + 0.5 * values / max(limit, 1e-8)
    return colour_table()[np.clip((scaled * 256).astype(np.int64), 0, 255)]


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
        colours = colourise(heatmap, float(np.abs(heatmap).max()))
        blended = (1 - alpha) * to_display(image, preprocess) + alpha * colours
        pictures.append(Image.fromarray((blended * 255).round().astype(np.uint8)))
    return pictures


@functools.cache
def font(size: int = 11) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font (no font file needed), once per process."""
    return ImageFont.load_default(size=size)


def compose_overlays(
    picture: np.ndarray,
    heatmaps: np.ndarray,
    titles: list[str],
    *,
    grid: tuple[int, int],
    suptitle: str = "",
    mask: np.ndarray | None = None,
) -> Image.Image:
    """One picture: the image (``H × W × 3`` in ``[0, 1]``), its evidence mask, then each heatmap
    (``[K, H, W]``) over a grey copy of the image, with a colour bar.

    The heatmaps share one scale centred at 0 (red = evidence for the class, blue = against); the patch
    grid is drawn so each cell reads as one Shapley player. Pictures under ``PANEL`` pixels are enlarged.
    """
    height, width = picture.shape[:2]
    scale = max(1, math.ceil(PANEL / max(height, width)))
    limit = max(float(np.abs(heatmaps).max()), 1e-8) if len(heatmaps) else 1e-8
    grey = picture.mean(-1, keepdims=True)
    panels = [picture]
    if mask is not None:
        panels.append(np.repeat(np.clip(mask, 0, 1)[..., None], 3, axis=-1))
    panels += [(1 - HEATMAP_ALPHA) * grey + HEATMAP_ALPHA * colourise(h, limit) for h in heatmaps]
    layout = Layout(height * scale, width * scale, len(panels), mask is not None)
    canvas = layout.template().copy()
    draw = ImageDraw.Draw(canvas)
    for n, panel in enumerate(panels):
        pixels = (panel * 255).round().astype(np.uint8)
        pixels = with_grid(np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1), grid)
        canvas.paste(Image.fromarray(pixels), (layout.left(n), layout.top))
    for n, title in enumerate(titles, start=len(panels) - len(titles)):
        draw.text((layout.left(n), layout.head), title, fill="black", font=font())
    draw.text((layout.gap, 2), suptitle, fill="black", font=font(12))
    labels = layout.left(len(panels)) + layout.bar_width + 3
    draw.text((labels, layout.top), f"{limit:+.3g}", fill="black", font=font(10))
    draw.text((labels, layout.top + layout.height - 12), f"{-limit:+.3g}", fill="black", font=font(10))
    return canvas


@dataclass(frozen=True)
class Layout:
    """Where ``compose_overlays`` puts things: ``panels`` pictures of ``height × width`` side by side under
    their titles, then the colour bar; what does not change from image to image is drawn once."""

    height: int
    width: int
    panels: int
    mask: bool
    gap: int = 8
    head: int = 18
    title_height: int = 16
    bar_width: int = 10
    bar_labels: int = 48

    @property
    def top(self) -> int:
        return self.head + self.title_height

    def left(self, panel: int) -> int:
        return self.gap + panel * (self.width + self.gap)

    @functools.cache  # noqa: B019 (a handful of layouts per process, each kept on purpose)
    def template(self) -> Image.Image:
        """The white canvas with the fixed titles and the colour bar (its scale is written per image)."""
        size = (self.left(self.panels) + self.bar_width + self.bar_labels, self.top + self.height + self.gap)
        canvas = Image.new("RGB", size, "white")
        draw = ImageDraw.Draw(canvas)
        for n, label in enumerate(["image", "evidence mask"][: 1 + self.mask]):
            draw.text((self.left(n), self.head), label, fill="black", font=font())
        ramp = np.linspace(1.0, -1.0, self.height)[:, None].repeat(self.bar_width, axis=1)
        colours = (colourise(ramp, 1.0) * 255).round().astype(np.uint8)
        canvas.paste(Image.fromarray(colours), (self.left(self.panels), self.top))
        middle = (self.left(self.panels) + self.bar_width + 3, self.top + self.height // 2 - 6)
        draw.text(middle, "0", fill="black", font=font(10))
        return canvas


def with_grid(pixels: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """``pixels`` (``H × W × 3``, uint8) with the patch grid's inner lines blended half-way to white."""
    height, width = pixels.shape[:2]
    rows = [round(k * height / grid[0]) for k in range(1, grid[0])]
    cols = [round(k * width / grid[1]) for k in range(1, grid[1])]
    pixels[rows] = pixels[rows] // 2 + 128
    pixels[:, cols] = pixels[:, cols] // 2 + 128
    return pixels
