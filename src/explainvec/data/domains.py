"""Named synthetic image domains: which shapes are classes, and the style they are drawn in.

Each image holds one to ``max_instances`` copies of its class shape, each roughly inside one patch cell,
plus distractors (thin lines, dots) that occur independently of the class and so carry no class
information. The per-pixel mask marks the class shapes: it is the right answer for an explanation.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Literal

import numpy as np

from explainvec.data.shapes import rasterise


@dataclass(frozen=True)
class Style:
    """How a domain looks: background, object colours, noise and clutter."""

    background: str  # "dark", "light" or "noise"
    object_value: tuple[float, float]  # HSV value range of object colours
    object_saturation: tuple[float, float]
    noise: float  # std of per-pixel Gaussian noise, in [0, 1] units
    max_distractors: int
    rotate: bool = False  # small random rotations of the shapes


STYLES: dict[str, Style] = {
    "plain": Style("dark", (0.75, 1.0), (0.6, 1.0), 0.0, 2),
    "pastel": Style("light", (0.15, 0.5), (0.3, 0.8), 0.03, 3),
    "noisy": Style("noise", (0.85, 1.0), (0.0, 1.0), 0.08, 3, rotate=True),
    "vivid": Style("noise", (0.9, 1.0), (0.8, 1.0), 0.05, 2),
}


@dataclass(frozen=True)
class Domain:
    """A named image domain: its class shapes and the styles its images are drawn in (one per image)."""

    name: str
    classes: tuple[str, ...]
    styles: tuple[str, ...]
    max_instances: int = 2
    description: str = ""
    layout: Literal["cells", "scene"] = "cells"
    """``cells``: each object inside one patch cell (the easy preset); ``scene``: anywhere, at any scale,
    partly occluded (:mod:`explainvec.data.scenes`)."""


GEO = ("circle", "square", "triangle", "cross", "ring")
GLYPHS = ("diamond", "xmark", "tee", "ell", "bowtie")
TEXTURES = ("hstripes", "vstripes", "dstripes", "checker", "dots")

DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain("geo", GEO, ("plain",), description="five geometric shapes on a dark background"),
        Domain("glyphs", GLYPHS, ("plain",), description="five other shapes, same style as geo"),
        Domain("geo-pastel", GEO, ("pastel",), description="geo's classes, light pastel style"),
        Domain("glyphs-noisy", GLYPHS, ("noisy",), description="glyphs' classes, noisy rotated style"),
        Domain(
            "textures",
            TEXTURES,
            ("vivid",),
            max_instances=1,
            description="less related: striped and dotted texture patches on colour noise",
        ),
        Domain(
            "mixture",
            GEO + GLYPHS,
            ("plain", "pastel", "noisy"),
            description="pretraining corpus: all ten shapes in every shape style",
        ),
        Domain(
            "scene-geo",
            GEO,
            ("plain", "pastel"),
            max_instances=3,
            layout="scene",
            description="realistic scenes: geo's shapes anywhere, at any scale, partly occluded",
        ),
        Domain(
            "scene-glyphs",
            GLYPHS,
            ("plain", "pastel"),
            max_instances=3,
            layout="scene",
            description="realistic scenes of glyphs' shapes, same styles as scene-geo",
        ),
        Domain(
            "scene-textures",
            TEXTURES,
            ("vivid",),
            max_instances=2,
            layout="scene",
            description="less related: texture patches at any position and scale on colour noise",
        ),
        Domain(
            "scene-mixture",
            GEO + GLYPHS,
            ("plain", "pastel"),
            max_instances=3,
            layout="scene",
            description="pretraining corpus of realistic scenes: all ten shapes, scene-geo's styles",
        ),
    )
}
"""Every embedded domain by name."""


def get_domain(name: str) -> Domain:
    """The domain called ``name``, or a ValueError listing the known ones."""
    if name not in DOMAINS:
        raise ValueError(f"unknown synthetic domain {name!r}; known: {', '.join(DOMAINS)}")
    return DOMAINS[name]


def colour(rng: np.random.Generator, style: Style) -> np.ndarray:
    hue = rng.uniform()
    sat = rng.uniform(*style.object_saturation)
    val = rng.uniform(*style.object_value)
    return np.array(colorsys.hsv_to_rgb(hue, sat, val), dtype=np.float32)


def background(rng: np.random.Generator, style: Style, size: int) -> np.ndarray:
    if style.background == "dark":
        return np.broadcast_to(rng.uniform(0.0, 0.2, 3).astype(np.float32), (size, size, 3)).copy()
    if style.background == "light":
        lo, hi = rng.uniform(0.75, 0.85, 3), rng.uniform(0.85, 1.0, 3)
        ramp = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
        return (lo + (hi - lo) * ramp).astype(np.float32) * np.ones((size, size, 3), np.float32)
    coarse = rng.uniform(0.05, 0.45, (4, 4, 3)).astype(np.float32)
    reps = -(-size // 4)
    return np.kron(coarse, np.ones((reps, reps, 1), np.float32))[:size, :size]


def render(
    domain: Domain, image_size: int, patch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Draw one image: ``(uint8 H×W×3 image, bool H×W class-evidence mask, label)``."""
    grid = image_size // patch_size
    label = int(rng.integers(len(domain.classes)))
    style = STYLES[domain.styles[int(rng.integers(len(domain.styles)))]]
    image = background(rng, style, image_size)
    mask = np.zeros((image_size, image_size), dtype=bool)

    n_objects = int(rng.integers(1, domain.max_instances + 1))
    n_distractors = int(rng.integers(0, style.max_distractors + 1))
    cells = rng.permutation(grid * grid)[: min(grid * grid, n_objects + n_distractors)]
    for k, cell in enumerate(cells):
        row, col = divmod(int(cell), grid)
        if k < n_objects:
            size = int(rng.integers(max(3, round(0.7 * patch_size)), patch_size + 1))
            rotation = rng.uniform(-0.4, 0.4) if style.rotate else 0.0
            shape = rasterise(domain.classes[label], size, rotation)
        else:
            shape = distractor(rng, patch_size)
            size = shape.shape[0]
        slack = patch_size - size
        y = row * patch_size + int(rng.integers(0, slack + 1))
        x = col * patch_size + int(rng.integers(0, slack + 1))
        region = image[y : y + size, x : x + size]
        region[shape] = colour(rng, style)
        if k < n_objects:
            mask[y : y + size, x : x + size] |= shape

    if style.noise:
        image = image + rng.normal(0.0, style.noise, image.shape).astype(np.float32)
    pixels = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    return pixels, mask, label


def distractor(rng: np.random.Generator, patch_size: int) -> np.ndarray:
    """A thin straight line or a small dot: clutter that no class owns."""
    size = int(rng.integers(max(2, patch_size // 2), patch_size + 1))
    canvas = np.zeros((size, size), dtype=bool)
    if rng.uniform() < 0.5:
        r = max(1, size // 4)
        y, x = rng.integers(0, size - r + 1, 2)
        canvas[y : y + r, x : x + r] = True
    else:
        t = np.linspace(0, 1, 2 * size)
        (y0, x0), (y1, x1) = rng.uniform(0, size - 1, (2, 2))
        canvas[np.round(y0 + (y1 - y0) * t).astype(int), np.round(x0 + (x1 - x0) * t).astype(int)] = True
    return canvas
