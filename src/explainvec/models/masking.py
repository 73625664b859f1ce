"""Removing patches by attention masking: removed patch tokens are masked out as keys in every block."""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer

from explainvec.models.vit import embed


def key_mask(keep: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    """Boolean SDPA mask ``[N, 1, 1, T]`` from patch keep-masks ``[N, P]``; prefix tokens are always kept."""
    prefix = keep.new_ones(keep.shape[0], num_prefix_tokens)
    return torch.cat([prefix, keep], dim=1)[:, None, None, :]


def masked_tokens(
    model: VisionTransformer, images: torch.Tensor, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """Final-norm tokens ``[B·M, T, D]`` for every image under every keep-mask.

    ``images`` is ``[B, 3, H, W]``; ``keep`` is ``None`` (all patches), ``[B, P]`` or ``[B, M, P]`` (M
    coalitions per image, any mix). The patch embedding runs once per image; blocks run once per
    coalition. Equivalent to dropping the removed tokens from the sequence.
    """
    tokens = embed(model, images)
    if keep is None:
        return model.norm(model.blocks(tokens))
    if keep.dim() == 2:
        keep = keep[:, None, :]
    b, m, _ = keep.shape
    tokens = tokens[:, None].expand(b, m, *tokens.shape[1:]).reshape(b * m, *tokens.shape[1:])
    mask = key_mask(keep.reshape(b * m, -1), model.num_prefix_tokens)
    for block in model.blocks:
        tokens = block(tokens, attn_mask=mask)
    return model.norm(tokens)


def masked_logits(
    model: VisionTransformer, images: torch.Tensor, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """Classifier logits ``[B·M, C]`` under keep-masks (see ``masked_tokens``)."""
    return model.forward_head(masked_tokens(model, images, keep))
