"""The class-agnostic explanation adapter on final patch tokens; the prediction never passes through it.

Three kinds, carried inside τ like any other parameter:

- ``linear``: a ``D → D`` map on each final-norm patch token (initialised to the identity matrix).
- ``attention``: one pre-norm transformer block over all final-norm tokens (class token included, so
  a patch's explanation can depend on the others and on what the model predicts), whose output
  projections start at zero, so it adds nothing until trained; its other weights start from a fixed
  seed, so every model's identity adapter is the same and τ's entries are relative to it.
- ``contributions``: a linear map of what each patch sends the class token through attention in every
  block (:mod:`explainvec.models.contributions`) and of its final token, ``[(L + 1)·D] → D``,
  initialised to the sum of the shares (the final token weighted 0): the training-free direct
  attribution; τ learns what the direct path misses.
- ``stream``: a linear map of the class token's residual stream split by token
  (:func:`explainvec.models.contributions.stream_terms`: per block what a patch sends through attention,
  that share of the attention output, its part of the class token's attention to itself and of its MLP)
  and of its final token, ``[(4L + 1)·D] → D``, initialised like ``contributions`` to the direct
  attribution.

The class token's output is never read, so a model with an adapter predicts exactly as without; the map
reads ``head(adapter(h)_j)``.
"""

from __future__ import annotations

import weakref

import torch
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from explainvec.models.contributions import (
    STREAM_TERMS,
    check_stream_blocks,
    mixed_contributions,
    mixed_stream,
)
from explainvec.vocabulary import AdapterKind

ADAPTER = "explain_adapter"
ATTENTION_SEED = 0


class AttentionAdapter(nn.Module):
    """One transformer block over ``[B, T, D]`` final tokens, residual and zero-initialised."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ATTENTION_SEED)
            self.block = Block(dim, num_heads, mlp_ratio=2.0, qkv_bias=True)
        for projection in (self.block.attn.proj, self.block.mlp.fc2):
            nn.init.zeros_(projection.weight)
            nn.init.zeros_(projection.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.block(tokens)


class ContributionAdapter(nn.Module):
    """``mix``: ``[(L + 1)·D] → D`` of each patch's per-block linearised contributions and final token;
    at start the sum of the contributions."""

    def __init__(self, dim: int, depth: int) -> None:
        super().__init__()
        self.mix = nn.Linear((depth + 1) * dim, dim)
        with torch.no_grad():
            self.mix.weight.copy_(torch.cat([torch.eye(dim).repeat(1, depth), torch.zeros(dim, dim)], 1))
            self.mix.bias.zero_()

    def forward(self, captured: dict, model: VisionTransformer, tokens: torch.Tensor) -> torch.Tensor:
        """The adapted patch tokens from what ``captured_attention`` kept of ``model``'s forward pass and
        its final tokens ``[B, T, D]`` (``mix`` applied to the linearised contributions, folded per block)."""
        dim, prefix = tokens.shape[-1], model.num_prefix_tokens
        blocks = list(self.mix.weight[:, :-dim].split(dim, dim=1))
        shares = mixed_contributions(model, captured, blocks, prefix)
        return shares + tokens[:, prefix:] @ self.mix.weight[:, -dim:].T + self.mix.bias


class StreamAdapter(nn.Module):
    """``terms``: ``[(4L + 1)·D] → D`` of each patch's per-block stream terms (:data:`STREAM_TERMS` in
    each block) and final token; at start the sum of the ``sent`` terms (the direct attribution)."""

    def __init__(self, dim: int, depth: int) -> None:
        super().__init__()
        self.terms = nn.Linear((len(STREAM_TERMS) * depth + 1) * dim, dim)
        start = [torch.eye(dim) if t == "sent" else torch.zeros(dim, dim) for t in STREAM_TERMS] * depth
        with torch.no_grad():
            self.terms.weight.copy_(torch.cat([*start, torch.zeros(dim, dim)], 1))
            self.terms.bias.zero_()

    def forward(self, captured: dict, model: VisionTransformer, tokens: torch.Tensor) -> torch.Tensor:
        """The adapted patch tokens from what ``captured_attention`` kept of ``model``'s forward pass and
        its final tokens ``[B, T, D]``."""
        dim, prefix = tokens.shape[-1], model.num_prefix_tokens
        mixes = list(self.terms.weight[:, :-dim].split(dim, dim=1))
        stream = mixed_stream(model, captured, mixes, prefix)
        return stream + tokens[:, prefix:] @ self.terms.weight[:, -dim:].T + self.terms.bias


_PENDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""What ``captured_attention`` kept of the last full-image forward pass of a model with a ``contributions``
or ``stream`` adapter, kept by
``masked_tokens`` until the map reads them (outside the module's state, so copies and files never see
them)."""


def keep_contributions(model: VisionTransformer, captured: dict) -> None:
    """Hand what ``captured_attention`` kept of this forward pass to ``model``'s adapter."""
    _PENDING[getattr(model, ADAPTER)] = captured


def needs_contributions(model: VisionTransformer) -> bool:
    return adapter_kind(model) in ("contributions", "stream")


def _new_adapter(model: VisionTransformer, kind: AdapterKind) -> nn.Module:
    dim = model.embed_dim
    if kind == "contributions":
        return ContributionAdapter(dim, len(model.blocks))
    if kind == "stream":
        check_stream_blocks(model)
        return StreamAdapter(dim, len(model.blocks))
    if kind == "attention":
        return AttentionAdapter(dim, model.blocks[-1].attn.num_heads)
    if kind != "linear":
        raise ValueError(f"unknown adapter kind {kind!r}: 'linear', 'attention', 'contributions' or 'stream'")
    adapter = nn.Linear(dim, dim)
    with torch.no_grad():
        adapter.weight.copy_(torch.eye(dim))
        adapter.bias.zero_()
    return adapter


def add_adapter(model: VisionTransformer, kind: AdapterKind = "linear") -> VisionTransformer:
    """Give ``model`` an identity adapter of ``kind`` in place (if it has none); returns ``model``."""
    if not has_adapter(model):
        reference = next(model.parameters())
        setattr(model, ADAPTER, _new_adapter(model, kind).to(device=reference.device, dtype=reference.dtype))
    return model


def has_adapter(model: VisionTransformer) -> bool:
    return isinstance(getattr(model, ADAPTER, None), nn.Module)


def adapter_kind(model: VisionTransformer) -> AdapterKind | None:
    """The kind of ``model``'s adapter, or ``None`` without one."""
    if not has_adapter(model):
        return None
    adapter = getattr(model, ADAPTER)
    if isinstance(adapter, ContributionAdapter):
        return "contributions"
    if isinstance(adapter, StreamAdapter):
        return "stream"
    return "attention" if isinstance(adapter, AttentionAdapter) else "linear"


def adapter_field(model: VisionTransformer) -> bool | AdapterKind:
    """The architecture field ``explain_adapter`` of ``model``: ``False``, ``True`` (linear, as files
    written before the other kinds say) or the kind's name."""
    kind = adapter_kind(model)
    return kind == "linear" if kind in (None, "linear") else kind


def kind_of(field: bool | str | None) -> AdapterKind | None:
    """The adapter kind a record's ``explain_adapter`` / ``adapter`` field names (``True``: linear)."""
    if not field:
        return None
    return "linear" if field is True else field


def kind_of_names(names) -> AdapterKind | None:
    """The adapter kind whose parameters ``names`` (τ's tensor names) hold, or ``None``."""
    adapter = [n for n in names if n.startswith(ADAPTER + ".")]
    if not adapter:
        return None
    if any(n.startswith(f"{ADAPTER}.mix.") for n in adapter):
        return "contributions"
    if any(n.startswith(f"{ADAPTER}.terms.") for n in adapter):
        return "stream"
    return "attention" if any(n.startswith(f"{ADAPTER}.block.") for n in adapter) else "linear"


def identity_adapter_parameters(
    model: VisionTransformer, kind: AdapterKind = "linear"
) -> dict[str, torch.Tensor]:
    """Parameters of an identity adapter of ``kind`` on ``model``: what τ's adapter entries are relative
    to."""
    adapter = _new_adapter(model, kind)
    return {f"{ADAPTER}.{n}": p.detach() for n, p in adapter.named_parameters()}


def adapted_patches(model: VisionTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """Final-norm patch tokens ``[B, P, D]`` of ``tokens [B, T, D]``, through the adapter if there is one."""
    prefix = model.num_prefix_tokens
    if not has_adapter(model):
        return tokens[:, prefix:]
    adapter = getattr(model, ADAPTER)
    if isinstance(adapter, AttentionAdapter):
        return adapter(tokens)[:, prefix:]
    if isinstance(adapter, ContributionAdapter | StreamAdapter):
        captured = _PENDING.pop(adapter, None)
        if captured is None or len(captured["residual"]) != len(tokens):
            raise RuntimeError(
                f"the {adapter_kind(model)} adapter reads a full-image pass of masked_tokens (none kept)"
            )
        return adapter(captured, model, tokens)
    return adapter(tokens[:, prefix:])
