"""Removing patches by attention masking: removed patch tokens are masked out as keys in every block.

Two ways to run coalitions, with the same results: one sequence per coalition with a key mask
(``masked_tokens``), or one sequence per complementary pair (S, N∖S) in which the patch tokens are
split into two segments that cannot see each other (``paired_prefix_tokens``, about half the cost).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from timm.models.vision_transformer import Block, VisionTransformer

from explainvec.models.adapter import has_adapter, keep_contributions
from explainvec.models.contributions import captured_attention
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
    coalition. Equivalent to dropping the removed tokens from the sequence. A full-image pass of a model
    with an adapter also hands it what the pass's attention kept (:func:`keep_contributions`).
    """
    tokens = embed(model, images)
    if keep is None and has_adapter(model):
        with captured_attention(model) as captured:
            tokens = model.norm(model.blocks(tokens))
        keep_contributions(model, captured)
        return tokens
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


def complementary_pairs(keep: torch.Tensor) -> bool:
    """Whether keep-masks ``[B, M, P]`` come as complementary pairs: coalition 2i+1 is N∖(coalition 2i).

    Paired Shapley-kernel sampling, and (all, ∅) or (∅, all), give such pairs.
    """
    return keep.shape[1] > 0 and keep.shape[1] % 2 == 0 and bool((keep[:, 0::2] != keep[:, 1::2]).all())


def segment_mask(first: torch.Tensor, num_prefix_tokens: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive SDPA mask ``[N, 1, T, T]`` (0 or −inf) for packed pairs, ``T = 2·prefix + P``, from the
    keep-masks ``[N, P]`` of the first coalition of each pair: token i sees token j iff both are in one
    segment. Segment 0 holds the first copy of the prefix tokens and the kept patches, segment 1 the
    second copy and the other patches. Float, so that no block converts it again (a bool mask would be).
    """
    n = first.shape[0]
    segment = torch.cat(
        [first.new_zeros(n, num_prefix_tokens), first.new_ones(n, num_prefix_tokens), ~first], dim=1
    )
    apart = segment[:, None, :, None] != segment[:, None, None, :]
    return torch.zeros(apart.shape, dtype=dtype, device=first.device).masked_fill_(apart, float("-inf"))


CPU_CHUNK_ELEMENTS = 2**20
"""Coalition sequences per block call on the CPU, as sequences × tokens × width: larger calls spill out of
the cache (measured, 34 coalitions per image: 7x7 grid, batch 64, 1.7× faster than one call; ViT-S/16,
batch 8, 1.3×)."""


def sequence_chunks(num_sequences: int, tokens: torch.Tensor, chunk_elements: int | None) -> list[slice]:
    """Row slices covering ``num_sequences`` sequences shaped like ``tokens [B, T, D]``, each at most
    ``chunk_elements`` elements (but at least one sequence); ``None`` means ``CPU_CHUNK_ELEMENTS`` on the
    CPU and a single slice elsewhere."""
    per_sequence = tokens[0].numel()
    if chunk_elements is None:
        chunk_elements = CPU_CHUNK_ELEMENTS if tokens.device.type == "cpu" else num_sequences * per_sequence
    rows = max(1, chunk_elements // per_sequence)
    return [slice(start, start + rows) for start in range(0, max(num_sequences, 1), rows)]


def leading_tokens(
    model: VisionTransformer,
    tokens: torch.Tensor,
    image: torch.Tensor,
    attn_mask: Callable[[slice], torch.Tensor],
    count: int,
    chunk_elements: int | None,
) -> torch.Tensor:
    """The first ``count`` final-norm tokens ``[N, count, D]`` of the sequences ``tokens[image]``, run through
    the blocks a chunk of rows at a time with the mask ``attn_mask(rows)`` (see ``sequence_chunks``)."""
    *blocks, last = model.blocks
    outputs = []
    for rows in sequence_chunks(len(image), tokens, chunk_elements):
        x, mask = tokens[image[rows]], attn_mask(rows)
        for block in blocks:
            x = block(x, attn_mask=mask)
        outputs.append(leading_rows(last, x, mask, count))
    return model.norm(torch.cat(outputs))


def leading_rows(
    block: torch.nn.Module, x: torch.Tensor, attn_mask: torch.Tensor, count: int
) -> torch.Tensor:
    """``block(x, attn_mask)[:, :count]``. For timm's pre-norm ``Block`` the MLP (two thirds of a block's
    work) runs on those rows only: after attention, nothing mixes tokens, and every token still serves as a
    key. Other block types run whole."""
    if type(block) is not Block:
        return block(x, attn_mask=attn_mask)[:, :count]
    attended = block.attn(block.norm1(x), attn_mask=attn_mask)[:, :count]
    x = x[:, :count] + block.drop_path1(block.ls1(attended))
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))


def paired_prefix_tokens(
    model: VisionTransformer, images: torch.Tensor, keep: torch.Tensor, *, chunk_elements: int | None = None
) -> torch.Tensor:
    """Final-norm prefix tokens ``[B·M, prefix, D]`` under keep-masks ``[B, M, P]`` in complementary pairs.

    Each pair runs as one sequence ``[prefix, prefix, patches]`` with a block-diagonal ``segment_mask``:
    attention is the only op that mixes tokens, so every segment's prefix tokens come out as in its own
    masked run (``masked_tokens``), for about the cost of one run per pair. Class token first, so
    ``forward_head`` of the result gives the logits.
    """
    if not complementary_pairs(keep):
        raise ValueError("paired_prefix_tokens needs keep-masks whose coalition 2i+1 is the complement of 2i")
    prefix = model.num_prefix_tokens
    tokens = embed(model, images)
    tokens = torch.cat([tokens[:, :prefix], tokens], dim=1)
    b, m, p = keep.shape
    first = keep[:, 0::2].reshape(-1, p)
    image = torch.arange(b, device=keep.device).repeat_interleave(m // 2)
    pairs = leading_tokens(
        model,
        tokens,
        image,
        lambda rows: segment_mask(first[rows], prefix, tokens.dtype),
        2 * prefix,
        chunk_elements,
    )
    return pairs.reshape(b * m, prefix, -1)


def masked_prefix_tokens(
    model: VisionTransformer,
    images: torch.Tensor,
    keep: torch.Tensor,
    *,
    pack_pairs: bool = True,
    chunk_elements: int | None = None,
) -> torch.Tensor:
    """Final-norm prefix tokens ``[B·M, prefix, D]`` under keep-masks ``[B, M, P]``: all that the class-token
    outputs (logits, class embedding) need. Complementary pairs are packed (``paired_prefix_tokens``)
    unless ``pack_pairs`` is False; any other mix runs one masked sequence per coalition. Either way the
    sequences run in chunks of ``chunk_elements`` (see ``sequence_chunks``)."""
    if pack_pairs and complementary_pairs(keep):
        return paired_prefix_tokens(model, images, keep, chunk_elements=chunk_elements)
    prefix = model.num_prefix_tokens
    b, m, p = keep.shape
    flat = keep.reshape(-1, p)
    image = torch.arange(b, device=keep.device).repeat_interleave(m)
    return leading_tokens(
        model, embed(model, images), image, lambda rows: key_mask(flat[rows], prefix), prefix, chunk_elements
    )
