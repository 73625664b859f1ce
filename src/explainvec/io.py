"""Atomic file writes (a temporary file beside the target, then a rename, so nothing is half-written) and
safetensors reads; tensors with NaN or Inf are refused both ways."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path in ``path``'s folder, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: object) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def write_tensors(path: str | Path, tensors: dict[str, torch.Tensor]) -> Path:
    """Write tensors as safetensors, atomically, after checking that all are finite."""
    name = non_finite(tensors)
    if name is not None:
        raise ValueError(f"refusing to write {path}: tensor {name!r} holds NaN or Inf")
    contiguous = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(contiguous, str(tmp)))


def read_tensors(path: str | Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file, refusing one that is not safetensors or whose tensors hold NaN or Inf."""
    try:
        tensors = load_file(str(path), device=device)
    except SafetensorError as error:
        raise ValueError(f"{path} is not a readable safetensors file: {error}") from error
    name = non_finite(tensors)
    if name is not None:
        raise ValueError(f"refusing to load {path}: tensor {name!r} holds NaN or Inf")
    return tensors


def non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding NaN or Inf, or None when all are finite."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return name
    return None
