"""Giving a model the classifier head of a new label set."""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer


@torch.no_grad()
def replace_head(model: VisionTransformer, old_names: list[str], new_names: list[str], seed: int = 0) -> None:
    """Reset the head to ``new_names`` (seeded init); rows of classes the old head knew are carried over."""
    if new_names == old_names:
        return
    weight, bias = model.head.weight.clone(), model.head.bias.clone()
    model.reset_classifier(len(new_names))
    torch.manual_seed(seed)
    torch.nn.init.trunc_normal_(model.head.weight, std=0.02)
    torch.nn.init.zeros_(model.head.bias)
    for row, name in enumerate(new_names):
        if name in old_names:
            model.head.weight[row] = weight[old_names.index(name)]
            model.head.bias[row] = bias[old_names.index(name)]
