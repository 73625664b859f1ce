"""Shapes drawn by the synthetic domains: each is a boolean mask over a square of normalised coordinates."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ShapeFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""A shape maps normalised coordinates ``u, v`` in ``[-1, 1]`` (x right, y down) to a boolean mask."""


def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u**2 + v**2 <= 0.95


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (v <= 0.9) & (v >= -0.9) & (np.abs(u) <= (v + 0.9) / 1.8)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return ((np.abs(u) <= 0.3) | (np.abs(v) <= 0.3)) & (np.abs(u) <= 0.95) & (np.abs(v) <= 0.95)


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r2 = u**2 + v**2
    return (r2 <= 0.95) & (r2 >= 0.3)


def _diamond(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(u) + np.abs(v) <= 1.0


def _xmark(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return ((np.abs(u - v) <= 0.45) | (np.abs(u + v) <= 0.45)) & (np.abs(u) <= 0.95) & (np.abs(v) <= 0.95)


def _tee(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return ((v <= -0.45) & (v >= -0.95) & (np.abs(u) <= 0.95)) | ((np.abs(u) <= 0.3) & (v <= 0.95))


def _ell(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return ((u <= -0.35) & (u >= -0.95) & (np.abs(v) <= 0.95)) | ((v >= 0.35) & (v <= 0.95) & (u >= -0.95))


def _bowtie(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (np.abs(v) <= np.abs(u) + 0.05) & (np.abs(u) <= 0.95)


def _stripes(angle: float, period: float) -> ShapeFn:
    """A square filled with stripes at ``angle`` (radians); used by the texture domain."""
    c, s = np.cos(angle), np.sin(angle)

    def shape(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        phase = (u * c + v * s) / period
        return (np.abs(u) <= 0.95) & (np.abs(v) <= 0.95) & (np.floor(phase) % 2 == 0)

    return shape


def _checker(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    cells = (np.floor(u / 0.5) + np.floor(v / 0.5)) % 2 == 0
    return (np.abs(u) <= 0.95) & (np.abs(v) <= 0.95) & cells


def _dots(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    fu, fv = (u + 1) % 0.66 - 0.33, (v + 1) % 0.66 - 0.33
    return (np.abs(u) <= 0.95) & (np.abs(v) <= 0.95) & (fu**2 + fv**2 <= 0.04)


SHAPES: dict[str, ShapeFn] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "ring": _ring,
    "diamond": _diamond,
    "xmark": _xmark,
    "tee": _tee,
    "ell": _ell,
    "bowtie": _bowtie,
    "hstripes": _stripes(np.pi / 2, 0.45),
    "vstripes": _stripes(0.0, 0.45),
    "dstripes": _stripes(np.pi / 4, 0.45),
    "checker": _checker,
    "dots": _dots,
}
"""Every class-bearing shape by name."""


def rasterise(shape: str, size: int, rotation: float = 0.0) -> np.ndarray:
    """Boolean ``size × size`` mask of a named shape, sampled at pixel centres, rotated by ``rotation``."""
    t = (np.arange(size) + 0.5) / size * 2 - 1
    v, u = np.meshgrid(t, t, indexing="ij")
    if rotation:
        c, s = np.cos(rotation), np.sin(rotation)
        u, v = c * u + s * v, -s * u + c * v
    return SHAPES[shape](u, v)
