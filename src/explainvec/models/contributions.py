"""What each token sends the class token through attention, block by block: a decomposition of the class
token's residual stream that one forward pass gives for free.

In every block the class token's attention output is ``Σ_j a_j W_o v_j``: token ``j``'s share is its value
vector weighted by the class token's attention, through the output projection (and layer scale). The final
norm is linear once its scale is fixed at the class token's, so each share, centred and scaled like the
class token, is read by the head as a logit contribution. Summed over blocks these shares are the
*direct* path of each patch to the logits (the MLPs and later blocks reshape them; that indirect part is
what the explanation adapter of kind ``contributions`` learns to correct).

:func:`stream_terms` goes further: it carries the class token's residual stream split by token through
every block, so the class token's own attention and its MLP are split by token too (the norms linearised
at the class token, the MLP's activation by its ratio ``act(z) / z``), and adds what removing a token does
to the attention: the rest renormalises, so a token counts relative to the attention output. The
explanation adapter of kind ``stream`` mixes those terms.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from timm.models.vision_transformer import VisionTransformer


@contextmanager
def captured_attention(model: VisionTransformer):
    """Inside it, forward passes of ``model`` keep each block's ``qkv`` output and the residual stream
    entering the final norm in the yielded dict (``"qkv"``: list per block, ``"residual"``), and the class
    token entering the first block (``"first"``)."""
    captured: dict = {"qkv": []}
    hooks = [
        b.attn.qkv.register_forward_hook(lambda m, a, out: captured["qkv"].append(out)) for b in model.blocks
    ]
    hooks.append(
        model.blocks[0].register_forward_pre_hook(
            lambda m, args: captured.__setitem__("first", args[0][:, 0])
        )
    )
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


def _read_out(model: VisionTransformer, mix: torch.Tensor) -> torch.Tensor:
    """``mix [D_out, D]`` after the final norm linearised at the class token (centring and the norm's
    weight folded in; its ``1/σ`` is left to the caller): ``[D_out, D]`` to apply to residual vectors."""
    scaled = mix * model.norm.weight
    return scaled - scaled.mean(1, keepdim=True)


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
        centred = _read_out(model, mix)
        layer_scale = getattr(block.ls1, "gamma", None)
        folded = (centred if layer_scale is None else centred * layer_scale) @ block.attn.proj.weight
        term = _weighted_values(block, qkv)[:, first:] @ folded.T
        total = term if total is None else total + term
    return total / _class_token_scale(model, captured)[:, None, None]


STREAM_TERMS = ("sent", "centred", "own", "mlp")
"""The per-block terms of :func:`stream_terms`, in the order it yields them."""


def _split_norm(norm, parts: torch.Tensor) -> torch.Tensor:
    """A layer norm of the sum of ``parts [B, T, D]`` over tokens, split by part: linear once the scale
    is fixed at the whole's; the bias goes to part 0 (the class token's)."""
    whole = parts.sum(1)
    sigma = (whole.var(-1, unbiased=False) + norm.eps).sqrt()[:, None, None]
    split = (parts - parts.mean(-1, keepdim=True)) / sigma * norm.weight
    split[:, 0] += norm.bias
    return split


def _heads_out(block, per_head: torch.Tensor) -> torch.Tensor:
    """``[B, H, T, head_dim]`` through the output projection (no bias) and layer scale: ``[B, T, D]``."""
    b, h, t, d = per_head.shape
    return block.ls1(per_head.transpose(1, 2).reshape(b, t, h * d) @ block.attn.proj.weight.T)


def _shares_of_output(block, shares: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """``a_j W_o o`` per token, ``[B, T, D]``, from the class token's attention ``shares [B, H, T]`` and
    its attention output per head ``output [B, H, head_dim]``: the output is projected once per image,
    not once per token."""
    weight = block.attn.proj.weight
    per_head = weight.view(weight.shape[0], *output.shape[1:])
    projected = torch.einsum("bhk,dhk->bhd", output, per_head)
    return block.ls1(torch.einsum("bht,bhd->btd", shares, projected))


def _activation_ratio(block, z: torch.Tensor) -> torch.Tensor:
    """``act(z) / z`` elementwise (its limit 0.5, GELU's, where ``z`` is 0)."""
    safe = torch.where(z.abs() > 1e-6, z, torch.ones_like(z))
    return torch.where(z.abs() > 1e-6, block.mlp.act(safe) / safe, torch.full_like(z, 0.5))


def check_stream_blocks(model: VisionTransformer) -> None:
    """Raise a ValueError unless every block is one :func:`stream_terms` can split: a fused ``qkv``
    attention without a norm inside, and a plain MLP (``fc1``, activation, ``fc2``, no norm inside)."""
    for index, block in enumerate(model.blocks):
        attn, mlp = block.attn, block.mlp
        plain = all(hasattr(mlp, name) for name in ("fc1", "act", "fc2")) and hasattr(attn, "qkv")
        norms = [getattr(attn, "norm", None), getattr(mlp, "norm", None)]
        if not plain or not all(n is None or isinstance(n, torch.nn.Identity) for n in norms):
            raise ValueError(
                f"the stream adapter needs plain timm blocks (fused qkv, an fc1-act-fc2 MLP, no norm "
                f"inside either); block {index} is not: use --adapter contributions"
            )


def stream_terms(model: VisionTransformer, captured: dict):
    """Yield ``(term, block, [B, T, D])``: what each token adds to the class token's residual stream in
    every block, in the residual space, split four ways (:data:`STREAM_TERMS`):

    - ``sent``: its value through the class token's attention, ``a_j W_o v_j`` (as
      :func:`block_contributions`);
    - ``centred``: ``a_j W_o o``, with ``o`` the attention output: removing token ``j`` renormalises the
      others, so it moves the output by about ``a_j W_o (v_j − o)``;
    - ``own``: its part of the class token's attention to itself, the class token's value split by token;
    - ``mlp``: its part of the class token's MLP output.

    ``own`` and ``mlp`` follow the class token's residual stream split by token from block to block
    (norms linearised at the class token, the activation by its ratio ``act(z) / z``); the class token's
    own slot holds its embedding and every bias, so the slots add up to the residual. For timm blocks with
    a plain MLP (no norm inside it) and attention without scale-norm, from what
    :func:`captured_attention` kept of one forward pass."""
    first = captured["first"]
    b, t, dim = captured["qkv"][0].shape[0], captured["qkv"][0].shape[1], first.shape[-1]
    parts = first.new_zeros(b, t, dim)
    parts[:, 0] = first
    for index, (block, qkv) in enumerate(zip(model.blocks, captured["qkv"], strict=True)):
        attn, mlp = block.attn, block.mlp
        weights, v = attention_weights(block, qkv, queries=1)
        shares = weights[:, :, 0, :, None]
        sent = shares * v
        yield "sent", index, _heads_out(block, sent)
        yield "centred", index, _shares_of_output(block, shares[..., 0], sent.sum(2))
        value = _split_norm(block.norm1, parts) @ attn.qkv.weight[2 * dim :].T
        if attn.qkv.bias is not None:
            value[:, 0] += attn.qkv.bias[2 * dim :]
        own = _heads_out(block, shares[:, :, :1] * value.view(b, t, attn.num_heads, -1).transpose(1, 2))
        yield "own", index, own
        attended = own + _heads_out(block, torch.cat([torch.zeros_like(sent[:, :, :1]), sent[:, :, 1:]], 2))
        attended[:, 0] += block.ls1(attn.proj.bias)
        parts = parts + attended
        z = _split_norm(block.norm2, parts) @ mlp.fc1.weight.T
        z[:, 0] += mlp.fc1.bias
        out = (z * _activation_ratio(block, z.sum(1))[:, None]) @ mlp.fc2.weight.T
        out[:, 0] += mlp.fc2.bias
        out = block.ls2(out)
        yield "mlp", index, out
        parts = parts + out


HOP_TERMS = ("moved_in", "moved_out")
"""The per-block terms of :func:`hop_terms`, in the order it yields them."""


def hop_terms(model: VisionTransformer, captured: dict, sent: list[torch.Tensor]):
    """Yield ``(term, block, [B, T, D])`` for every block but the first: what a block's ``sent`` terms
    (``sent``: one ``[B, T, D]`` per block, as :func:`stream_terms` yields them) owe to what the tokens
    gathered from each other in the blocks before, by the attention rollout ``R`` of those blocks
    (head-mean attention, the residual as half an identity, ``R = Π_k (½ I + ½ Ā_k)``; rows are
    queries). Two terms (:data:`HOP_TERMS`):

    - ``moved_in``: token ``j`` is credited with ``Σ_{i ≠ j} R_ij · sent_i``, what reached the class token
      through the tokens that carried ``j``;
    - ``moved_out``: token ``i``'s own ``sent_i`` weighted by ``Σ_{j ≠ i} R_ij``, the part of it that it
      carried for others.

    A token's value in a later block mixes what earlier blocks gathered from other tokens; the ``sent``
    terms credit it all to the carrier, these two let the adapter move it back."""
    rollout = None
    for index, (block, qkv, term) in enumerate(zip(model.blocks, captured["qkv"], sent, strict=True)):
        if rollout is not None:
            off = rollout * (1 - torch.eye(rollout.shape[-1], dtype=rollout.dtype, device=rollout.device))
            yield "moved_in", index, off.transpose(1, 2) @ term
            yield "moved_out", index, off.sum(-1, keepdim=True) * term
        step = 0.5 * attention_weights(block, qkv)[0].mean(1)
        step.diagonal(dim1=-2, dim2=-1).add_(0.5)
        rollout = step if rollout is None else step @ rollout


def two_hop_terms(model: VisionTransformer, captured: dict):
    """:func:`stream_terms`, then the :func:`hop_terms` of the ``sent`` terms among them (each computed
    once; only those are kept until the hop terms are read)."""
    sent = []
    for name, block, term in stream_terms(model, captured):
        if name == "sent":
            sent.append(term)
        yield name, block, term
    yield from hop_terms(model, captured, sent)


def mixed_terms(
    model: VisionTransformer, captured: dict, mixes: list[torch.Tensor], terms, first: int = 0
) -> torch.Tensor:
    """``Σ_k M_k · s_k`` for tokens ``first:``, with ``s_k`` the ``(term, block, [B, T, D])`` that ``terms``
    yields (:func:`stream_terms`, :func:`two_hop_terms`) in the order they come, each through the final norm
    linearised at the class token, and ``M_k`` (``[D_out, D]``) one per term: ``[B, T − first, D_out]``."""
    total = None
    for mix, (_, _, term) in zip(mixes, terms, strict=True):
        term = term[:, first:] @ _read_out(model, mix).T
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
