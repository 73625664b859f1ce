"""The class-agnostic explanation adapter: a linear ``D → D`` map on final patch tokens only.

The prediction never passes through it (the class token does not), so a model with an adapter predicts
exactly as without; the map reads ``head(adapter(h_j))``. It starts as the identity, so a model without
one behaves as a model with an identity adapter, and its parameters travel inside τ like any other.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

ADAPTER = "explain_adapter"


def add_adapter(model: VisionTransformer) -> VisionTransformer:
    """Give ``model`` an identity adapter in place (if it has none); returns ``model``."""
    if not has_adapter(model):
        dim = model.embed_dim
        adapter = nn.Linear(dim, dim)
        with torch.no_grad():
            adapter.weight.copy_(torch.eye(dim))
            adapter.bias.zero_()
        reference = next(model.parameters())
        setattr(model, ADAPTER, adapter.to(device=reference.device, dtype=reference.dtype))
    return model


def has_adapter(model: VisionTransformer) -> bool:
    return isinstance(getattr(model, ADAPTER, None), nn.Module)


def identity_adapter_parameters(model: VisionTransformer) -> dict[str, torch.Tensor]:
    """Parameters of an identity adapter on ``model``: what τ's adapter entries are relative to."""
    dim = model.embed_dim
    return {f"{ADAPTER}.weight": torch.eye(dim), f"{ADAPTER}.bias": torch.zeros(dim)}


def adapted_patches(model: VisionTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """Final-norm patch tokens ``[B, P, D]`` of ``tokens [B, T, D]``, through the adapter if there is one."""
    patches = tokens[:, model.num_prefix_tokens :]
    return getattr(model, ADAPTER)(patches) if has_adapter(model) else patches
