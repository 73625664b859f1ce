"""Editing a model's parameters in place by λ·τ and restoring them exactly: many λ, no copy per λ."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from timm.models.vision_transformer import VisionTransformer

from explainvec.models.adapter import ADAPTER, add_adapter, has_adapter, kind_of_names

Scale = float | Mapping[str, float]
"""One λ for every parameter, or a λ per block (``block_of`` names of blocks τ holds; missing blocks get
0)."""


def block_of(name: str) -> str:
    """The group a parameter belongs to for per-block λ: ``blocks.<i>`` or its first name component."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "blocks" else parts[0]


def add_scaled(model: VisionTransformer, tensors: Mapping[str, torch.Tensor], lam: Scale) -> None:
    """``θ += λ·τ`` in place on the parameters named in ``tensors`` (an adapter is added if τ has one);
    ValueError for a per-block λ naming a block that ``tensors`` does not hold."""
    if isinstance(lam, Mapping):
        blocks = {block_of(name) for name in tensors}
        if unknown := sorted(set(lam) - blocks):
            raise ValueError(
                f"per-block λ for {', '.join(unknown)}: the vector holds only {', '.join(sorted(blocks))}"
            )
    if kind := kind_of_names(tensors):
        add_adapter(model, kind)
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, delta in tensors.items():
            scale = lam.get(block_of(name), 0.0) if isinstance(lam, Mapping) else lam
            if scale:
                parameters[name].add_(delta.to(parameters[name]), alpha=float(scale))


class VectorEdit:
    """A context manager in the style of zennit's parameter modifications: inside it,
    ``edit.set(lam)`` makes ``model`` hold ``θ₀ + λ·τ``; on exit ``θ₀`` is restored bit for bit (and an
    adapter added for τ removed). Only the parameters τ touches are kept aside, once."""

    def __init__(self, model: VisionTransformer, tensors: Mapping[str, torch.Tensor]) -> None:
        self.model, self.tensors = model, tensors
        self._originals: dict[str, torch.Tensor] = {}
        self._added_adapter = False

    def __enter__(self) -> VectorEdit:
        self._added_adapter = not has_adapter(self.model) and any(
            n.startswith(ADAPTER + ".") for n in self.tensors
        )
        if self._added_adapter:
            add_adapter(self.model, kind_of_names(self.tensors))
        parameters = dict(self.model.named_parameters())
        self._originals = {name: parameters[name].detach().clone() for name in self.tensors}
        return self

    def set(self, lam: Scale) -> VisionTransformer:
        """Make the model hold ``θ₀ + λ·τ``; returns it."""
        self._restore()
        add_scaled(self.model, self.tensors, lam)
        return self.model

    def _restore(self) -> None:
        parameters = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, original in self._originals.items():
                parameters[name].copy_(original)

    def __exit__(self, *exc: object) -> None:
        self._restore()
        if self._added_adapter:
            delattr(self.model, ADAPTER)
        self._originals = {}
