"""A short, stable hash of a model's weights: how vectors and models recognise a shared base."""

from __future__ import annotations

import hashlib

import torch


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 (first 16 hex digits) over sorted names, dtypes, shapes and bytes of the tensors."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
