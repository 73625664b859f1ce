"""Realistic synthetic scenes: class shapes at any position and scale, straddling patch borders, several
instances, clutter drawn over them in a random order (so objects are partly occluded); the mask stays
exact, it marks the pixels where a class shape is visible in the finished image.

Today's "one object per patch cell" layout (:func:`explainvec.data.domains.render`) stays as the easy preset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explainvec.data.domains import STYLES, Domain, background, colour, distractor
from explainvec.data.shapes import rasterise

SCALE = (1.0, 1.75)
"""Object side as a multiple of the patch side."""


@dataclass(frozen=True)
class Stroke:
    """One thing drawn: a boolean ``shape`` with its top-left corner at ``(y, x)`` (clipped to the
    image), in ``colour``; ``evidence``: a class shape (else clutter, which hides what is under it)."""

    shape: np.ndarray
    y: int
    x: int
    colour: np.ndarray
    evidence: bool


def paint(image: np.ndarray, mask: np.ndarray, stroke: Stroke) -> None:
    """Draw ``stroke`` on ``image [H, W, 3]`` in place and update the evidence ``mask [H, W]``: the stroke's
    pixels become evidence if it is a class shape, and stop being evidence if it is clutter."""
    height, width = mask.shape
    y0, x0 = max(stroke.y, 0), max(stroke.x, 0)
    y1 = min(stroke.y + stroke.shape.shape[0], height)
    x1 = min(stroke.x + stroke.shape.shape[1], width)
    if y1 <= y0 or x1 <= x0:
        return
    shape = stroke.shape[y0 - stroke.y : y1 - stroke.y, x0 - stroke.x : x1 - stroke.x]
    image[y0:y1, x0:x1][shape] = stroke.colour
    mask[y0:y1, x0:x1][shape] = stroke.evidence


def render_scene(
    domain: Domain, image_size: int, patch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Draw one scene: ``(uint8 H×W×3 image, bool H×W class-evidence mask, label)``."""
    label = int(rng.integers(len(domain.classes)))
    style = STYLES[domain.styles[int(rng.integers(len(domain.styles)))]]
    image = background(rng, style, image_size)
    mask = np.zeros((image_size, image_size), dtype=bool)
    strokes = []
    for _ in range(int(rng.integers(1, domain.max_instances + 1))):
        size = int(rng.integers(max(4, round(SCALE[0] * patch_size)), round(SCALE[1] * patch_size) + 1))
        rotation = rng.uniform(-0.4, 0.4) if style.rotate else 0.0
        y, x = rng.integers(0, image_size - size + 1, 2)
        strokes.append(
            Stroke(rasterise(domain.classes[label], size, rotation), y, x, colour(rng, style), True)
        )
    for _ in range(int(rng.integers(0, style.max_distractors + 1))):
        shape = distractor(rng, patch_size) if rng.uniform() < 0.5 else _bar(rng, patch_size)
        y = int(rng.integers(-shape.shape[0] // 2, image_size - shape.shape[0] // 2))
        x = int(rng.integers(-shape.shape[1] // 2, image_size - shape.shape[1] // 2))
        strokes.append(Stroke(shape, y, x, colour(rng, style), False))
    for k in rng.permutation(len(strokes)):
        paint(image, mask, strokes[k])
    if style.noise:
        image = image + rng.normal(0.0, style.noise, image.shape).astype(np.float32)
    pixels = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    return pixels, mask, label


def _bar(rng: np.random.Generator, patch_size: int) -> np.ndarray:
    """A thin bar, horizontal or vertical, up to 1.5 patches long: it occludes part of what it crosses."""
    length = int(rng.integers(patch_size // 2, round(1.5 * patch_size) + 1))
    thickness = int(rng.integers(1, max(2, patch_size // 4) + 1))
    bar = np.ones((thickness, length), dtype=bool)
    return bar if rng.uniform() < 0.5 else bar.T
