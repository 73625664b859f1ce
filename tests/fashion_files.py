"""A small Fashion-MNIST-shaped folder of idx files, written by the tests (plain or gzip-compressed)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from explainvec.data.fashion import FILES


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx encoding of a uint8 ``array``: magic (0, 0, 0x08, ndim), big-endian sizes, the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_fashion(folder: Path, *, train: int = 200, test: int = 50, compress: bool = True) -> dict:
    """Random 28×28 images whose every pixel equals ``10 · label + 5`` inside a centred square (black
    outside), with labels cycling over the ten classes; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for part, count in (("train", train), ("test", test)):
        labels = (np.arange(count) * 7 % 10).astype(np.uint8)
        images = np.zeros((count, 28, 28), np.uint8)
        images[:, 6:22, 6:22] = (10 * labels + 5)[:, None, None]
        images_name, labels_name = FILES[part]
        for name, array in ((images_name, images), (labels_name, labels)):
            data = idx_bytes(array)
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        arrays[part] = (images, labels)
    return arrays
