"""Reading the idx format of MNIST-style datasets (plain or gzip-compressed), checked as a whole."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from explainvec.data.folder import DataError

UNSIGNED_BYTE = 0x08


def read_idx(path: str | Path) -> np.ndarray:
    """The uint8 array stored in the idx file ``path`` (``.gz`` decompressed); a :class:`DataError` naming
    the file when the magic number, the element type or the size does not match its header."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"cannot read idx file {path}: {error}") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an idx file (bad magic number)")
    if raw[2] != UNSIGNED_BYTE:
        raise DataError(f"{path}: idx element type 0x{raw[2]:02x} is not unsigned byte")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated idx header")
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise DataError(
            f"{path}: header says {shape} ({int(np.prod(shape))} bytes), file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
