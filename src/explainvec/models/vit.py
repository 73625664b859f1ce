"""The Vision Transformers explainvec works with: timm ``VisionTransformer`` models with a class token."""

from __future__ import annotations

from functools import partial

import timm
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from explainvec.models.adapter import add_adapter, kind_of

GRID_PRESETS: dict[str, dict] = {
    "4x4": {"img_size": 32, "patch_size": 8, "embed_dim": 96, "depth": 4, "num_heads": 3},
    "7x7": {"img_size": 56, "patch_size": 8, "embed_dim": 96, "depth": 4, "num_heads": 3},
    "28px-4x4": {"img_size": 28, "patch_size": 7, "embed_dim": 64, "depth": 4, "num_heads": 4},
    "28px-7x7": {"img_size": 28, "patch_size": 4, "embed_dim": 64, "depth": 4, "num_heads": 4},
}
"""Tiny ViTs for the embedded domains: 16 patches (exact Shapley values affordable) and 49 (paper-like);
the ``28px-`` ones for Fashion-MNIST's 28×28 photos."""


def build_vit(architecture: dict) -> VisionTransformer:
    """A timm ``VisionTransformer`` from its keyword arguments (as stored in a checkpoint's sidecar).

    ``{"timm_model": "<name>", **overrides}`` builds a named timm model (random weights, never a
    download); any other dict is passed to ``VisionTransformer``. ``explain_adapter: "<kind>"`` adds
    the explanation adapter; ``norm_eps`` sets the LayerNorms' epsilon (timm's
    default: 1e-6).
    """
    kwargs = dict(architecture)
    adapter = kwargs.pop("explain_adapter", False)
    if "norm_eps" in kwargs:
        kwargs["norm_layer"] = partial(nn.LayerNorm, eps=kwargs.pop("norm_eps"))
    name = kwargs.pop("timm_model", None)
    if name is None:
        model = VisionTransformer(**{"class_token": True, "global_pool": "token", **kwargs})
    else:
        model = timm.create_model(name, pretrained=False, **kwargs)
    require_class_token(model, str(architecture))
    return add_adapter(model, kind_of(adapter)) if adapter else model


def require_class_token(model: torch.nn.Module, name: str) -> None:
    """Refuse a model that is not a timm ``VisionTransformer`` classifying from its class token."""
    if not isinstance(model, VisionTransformer) or model.cls_token is None or model.global_pool != "token":
        raise ValueError(f"explainvec needs a timm ViT that classifies from its class token: {name}")


def grid_size(model: VisionTransformer) -> tuple[int, int]:
    """Rows and columns of the patch grid."""
    return tuple(model.patch_embed.grid_size)


def num_patches(model: VisionTransformer) -> int:
    """Number of patch tokens ``P`` (the players of the Shapley game)."""
    rows, cols = grid_size(model)
    return rows * cols


def patch_size(model: VisionTransformer) -> int:
    """Side of a square patch in pixels."""
    return int(model.patch_embed.patch_size[0])


def image_size(model: VisionTransformer) -> int:
    """Side of the square input image in pixels."""
    return int(model.patch_embed.img_size[0])


def embed(model: VisionTransformer, images: torch.Tensor) -> torch.Tensor:
    """Token sequence entering the first block: patch embedding, class token, positions, pre-norm."""
    x = model.patch_embed(images)
    x = model._pos_embed(x)
    x = model.patch_drop(x)
    return model.norm_pre(x)
