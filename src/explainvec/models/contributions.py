"""What each token sends the class token through attention, block by block: a decomposition of the class
token's residual stream that one forward pass gives for free.

In every block the class token's attention output is ``Σ_j a_j W_o v_j``: token ``j``'s share is its value
vector weighted by the class token's attention, through the output projection (and layer scale). The final
norm is linear once its scale is fixed at the class token's, so each share, centred and scaled like the
class token, is read by the head as a logit contribution. Summed over blocks these shares are the
*direct* path of each patch to the logits (the MLPs and later blocks reshape them; that indirect part is
what the explanation adapter of kind ``contributions`` learns to correct).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from timm.models.vision_transformer import VisionTransformer


@contextmanager
def captured_attention(model: VisionTransformer):
    """Inside it, forward passes of ``model`` keep each block's ``qkv`` output and the residual stream
    entering the final norm in the yielded dict (``"qkv"``: list per block, ``"residual"``)."""
    captured: dict = {"qkv": []}
    hooks = [
        b.attn.qkv.register_forward_hook(lambda m, a, out: captured["qkv"].append(out)) for b in model.blocks
    ]
    hooks.append(
        model.norm.register_forward_pre_hook(lambda m, args: captured.__setitem__("residual", args[0]))
    )
    try:
        yield captured
    finally:
        for hook in hooks:
            hook.remove()


def attention_weights(
    block, qkv: torch.Tensor, queries: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A block's attention weights ``[B, H, Q, T]`` from its ``qkv`` output (the first ``queries`` tokens
    as queries, all when ``None``), and its value vectors ``[B, H, T, head_dim]``."""
    attn = block.attn
    b, n, _ = qkv.shape
    q, k, v = qkv.reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q = q if queries is None else q[:, :, :queries]
    return ((attn.q_norm(q) * attn.scale) @ attn.k_norm(k).transpose(-2, -1)).softmax(-1), v


def _weighted_values(block, qkv: torch.Tensor) -> torch.Tensor:
    """Each token's value vectors weighted by the class token's attention, heads side by side: ``[B, T, D]``
    (before the output projection)."""
    weights, v = attention_weights(block, qkv, queries=1)
    b, n, _ = qkv.shape
    return (weights.transpose(-2, -1) * v).permute(0, 2, 1, 3).reshape(b, n, -1)


def _class_token_scale(model: VisionTransformer, captured: dict) -> torch.Tensor:
    """``σ`` ``[B]`` of the class token's residual entering the final norm (what the norm divides by)."""
    residual = captured["residual"][:, 0]
    return (residual.var(-1, unbiased=False) + model.norm.eps).sqrt()


def block_contributions(model: VisionTransformer, captured: dict) -> torch.Tensor:
    """Each token's share of the class token's attention output in every block, ``[B, T, L, D]`` (with the
    output projection's bias they sum over tokens to that output; timm's ``Attention`` without scale-norm
    or gate), from what :func:`captured_attention` kept of one forward pass."""
    shares = [
        block.ls1(_weighted_values(block, qkv) @ block.attn.proj.weight.T)
        for block, qkv in zip(model.blocks, captured["qkv"], strict=True)
    ]
    return torch.stack(shares, dim=2)


def mixed_contributions(
    model: VisionTransformer, captured: dict, mixes: list[torch.Tensor], first: int = 0
) -> torch.Tensor:
    """``Σ_l M_l · c_l`` for tokens ``first:`` with ``c_l`` the :func:`linearised_contributions` of block
    ``l`` and ``M_l`` (``[D_out, D]``) one per block: ``[B, T − first, D_out]``, without materialising the
    per-block contributions. Centring, the final norm's weight, the layer scale and the output projection
    are linear, so they fold into one ``[D_out, D]`` matrix per block; only the class token's ``1/σ`` stays
    per image."""
    total = None
    for block, qkv, mix in zip(model.blocks, captured["qkv"], mixes, strict=True):
        scaled = mix * model.norm.weight
        centred = scaled - scaled.mean(1, keepdim=True)
        layer_scale = getattr(block.ls1, "gamma", None)
        folded = (centred if layer_scale is None else centred * layer_scale) @ block.attn.proj.weight
        term = _weighted_values(block, qkv)[:, first:] @ folded.T
        total = term if total is None else total + term
    return total / _class_token_scale(model, captured)[:, None, None]


def linearised_contributions(model: VisionTransformer, captured: dict) -> torch.Tensor:
    """:func:`block_contributions` through the final norm linearised at the class token (centred, scaled
    by its ``1/σ`` and the norm's weight): ``[B, T, L, D]`` in the space the head reads."""
    shares = block_contributions(model, captured)
    sigma = _class_token_scale(model, captured)[:, None, None, None]
    return (shares - shares.mean(-1, keepdim=True)) * model.norm.weight / sigma


def direct_logits(model: VisionTransformer, images: torch.Tensor) -> torch.Tensor:
    """The direct attribution of ``images`` ``[B, 3, H, W]``: each patch's linearised contributions summed
    over blocks and read by the head, ``[B, P, C]``, from one forward pass."""
    with captured_attention(model) as captured:
        model.forward_features(images)
    head = model.head.weight
    return mixed_contributions(model, captured, [head] * len(model.blocks), model.num_prefix_tokens)
