"""Where a command runs: a device name from the command line checked against what this machine has."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """The torch device for ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (CUDA when available, else
    CPU); ValueError, in one line, for an unknown name or a device this machine does not have."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    unknown = ValueError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise unknown from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} requested but torch.cuda.is_available() is False")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"{name} requested but only {count} CUDA device(s) are visible")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{name} requested but torch.backends.mps.is_available() is False")
    elif device.type != "cpu":
        raise unknown
    return device
