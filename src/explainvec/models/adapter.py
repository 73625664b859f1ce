"""The class-agnostic explanation adapter on final patch tokens; the prediction never passes through it.

Four kinds, carried inside τ like any other parameter; each starts as the training-free direct
attribution (what each patch sends the class token through attention, summed over blocks) and learns
what it misses:

- ``contributions``: a linear map of what each patch sends the class token through attention in every
  block (:mod:`explainvec.models.contributions`) and of its final token, ``[(L + 1)·D] → D``,
  initialised to the sum of the shares (the final token weighted 0).
- ``stream``: a linear map of the class token's residual stream split by token
  (:func:`explainvec.models.contributions.stream_terms`: per block what a patch sends through attention,
  that share of the attention output, its part of the class token's attention to itself and of its MLP)
  and of its final token, ``[(4L + 1)·D] → D``, initialised like ``contributions``.
- ``two-hop``: ``stream`` plus a linear map of the :func:`explainvec.models.contributions.hop_terms`
  (what later blocks' ``sent`` terms owe to the tokens that earlier blocks gathered from), starting at
  zero.
- ``two-hop-mlp``: ``two-hop`` plus a one-hidden-layer GELU map of the same terms and final token
  (hidden width 128), its output layer starting at zero.

The class token's output is never read, so a model with an adapter predicts exactly as without; the map
reads ``head(adapter(h)_j)``. (A ``linear`` map of the final patch tokens and an ``attention`` block over
them were measured far behind and removed: docs/transfer.md.)
"""

from __future__ import annotations

import weakref
from typing import get_args

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from explainvec.models.contributions import (
    HOP_TERMS,
    STREAM_TERMS,
    check_stream_blocks,
    mixed_contributions,
    mixed_terms,
    stream_terms,
    two_hop_terms,
)
from explainvec.vocabulary import AdapterKind

ADAPTER = "explain_adapter"
REMOVED = ("linear", "attention")


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
        dim = tokens.shape[-1]
        return self._affine(
            captured, model, tokens, self._mixes(dim), self.terms.weight[:, -dim:], self.terms.bias
        )

    def _affine(
        self,
        captured: dict,
        model: VisionTransformer,
        tokens: torch.Tensor,
        mixes: list[torch.Tensor],
        final: torch.Tensor,
        bias: torch.Tensor,
    ) -> torch.Tensor:
        """``Σ_k mixes_k · term_k + final · token + bias`` for each patch, ``[B, P, D_out]``: an affine map
        of the terms (:meth:`_terms`, through :func:`mixed_terms`) and of the final token."""
        prefix = model.num_prefix_tokens
        mixed = mixed_terms(model, captured, mixes, self._terms(model, captured), prefix)
        return mixed + tokens[:, prefix:] @ final.T + bias

    def _mixes(self, dim: int) -> list[torch.Tensor]:
        """One ``[D, D]`` mix per term, in the order :meth:`_terms` yields them."""
        return list(self.terms.weight[:, :-dim].split(dim, dim=1))

    def _terms(self, model: VisionTransformer, captured: dict):
        return stream_terms(model, captured)


class TwoHopAdapter(StreamAdapter):
    """A :class:`StreamAdapter` that also mixes the :func:`hop_terms` of every block but the first,
    ``hops``: ``[2(L − 1)·D] → D``, starting at zero (so at start it is the direct attribution too)."""

    def __init__(self, dim: int, depth: int) -> None:
        super().__init__(dim, depth)
        self.hops = nn.Linear(len(HOP_TERMS) * (depth - 1) * dim, dim, bias=False)
        nn.init.zeros_(self.hops.weight)

    def _mixes(self, dim: int) -> list[torch.Tensor]:
        return [*super()._mixes(dim), *self.hops.weight.split(dim, dim=1)]

    def _terms(self, model: VisionTransformer, captured: dict):
        return two_hop_terms(model, captured)


class TwoHopMlpAdapter(TwoHopAdapter):
    """A :class:`TwoHopAdapter` plus ``out(GELU(hidden(x)))``, ``x`` the same terms and final token
    (``hidden``: ``[(6L − 1)·D] → 128``, its columns in the order :meth:`_terms` yields the terms, then the
    final token). ``out`` starts at zero, so at start it is the direct attribution; ``hidden`` starts at a
    fixed random draw (seed 0), so every process and file agrees on the identity adapter τ is relative
    to. The linear and hidden mixes of each term are applied in one product."""

    HIDDEN = 128

    def __init__(self, dim: int, depth: int) -> None:
        super().__init__(dim, depth)
        inputs = self.terms.in_features + self.hops.in_features
        self.hidden = nn.Linear(inputs, self.HIDDEN)
        self.out = nn.Linear(self.HIDDEN, dim, bias=False)
        draw = torch.randn(self.HIDDEN, inputs, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            self.hidden.weight.copy_(draw / inputs**0.5)
            self.hidden.bias.zero_()
            self.out.weight.zero_()

    def forward(self, captured: dict, model: VisionTransformer, tokens: torch.Tensor) -> torch.Tensor:
        dim = tokens.shape[-1]
        hidden_mixes = self.hidden.weight[:, :-dim].split(dim, dim=1)
        mixes = [torch.cat(pair) for pair in zip(self._mixes(dim), hidden_mixes, strict=True)]
        final = torch.cat([self.terms.weight[:, -dim:], self.hidden.weight[:, -dim:]])
        bias = torch.cat([self.terms.bias, self.hidden.bias])
        both = self._affine(captured, model, tokens, mixes, final, bias)
        linear, hidden = both.split([dim, self.HIDDEN], dim=-1)
        return linear + self.out(nn.functional.gelu(hidden))


_STREAM_KINDS = {"stream": StreamAdapter, "two-hop": TwoHopAdapter, "two-hop-mlp": TwoHopMlpAdapter}

_PENDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""What ``captured_attention`` kept of the last full-image forward pass of a model with an adapter, kept
by ``masked_tokens`` until the map reads them (outside the module's state, so copies and files never see
them)."""


def keep_contributions(model: VisionTransformer, captured: dict) -> None:
    """Hand what ``captured_attention`` kept of this forward pass to ``model``'s adapter."""
    _PENDING[getattr(model, ADAPTER)] = captured


def _new_adapter(model: VisionTransformer, kind: AdapterKind) -> nn.Module:
    dim, depth = model.embed_dim, len(model.blocks)
    if kind_of(kind) == "contributions":
        return ContributionAdapter(dim, depth)
    check_stream_blocks(model)
    return _STREAM_KINDS[kind](dim, depth)


def add_adapter(model: VisionTransformer, kind: AdapterKind) -> VisionTransformer:
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
    return next((k for k, kind in _STREAM_KINDS.items() if type(adapter) is kind), "contributions")


def adapter_field(model: VisionTransformer) -> bool | AdapterKind:
    """The architecture field ``explain_adapter`` of ``model``: ``False`` or the kind's name."""
    return adapter_kind(model) or False


def kind_of(field: bool | str | None) -> AdapterKind | None:
    """The adapter kind a record's ``explain_adapter`` / ``adapter`` field names (``False``/``None``:
    none); a ValueError for the removed kinds (``True`` was the linear one)."""
    if not field:
        return None
    if field is True or field in REMOVED:
        removed = "linear" if field is True else field
        raise ValueError(
            f"the {removed} explanation adapter was removed (far behind the stream and two-hop adapters, "
            "docs/transfer.md): rebuild the file with explainvec vector (the default adapter)"
        )
    if field not in get_args(AdapterKind):
        raise ValueError(f"unknown adapter kind {field!r}: one of {', '.join(get_args(AdapterKind))}")
    return field


def kind_of_names(names) -> AdapterKind | None:
    """The adapter kind whose parameters ``names`` (τ's tensor names) hold, or ``None``."""
    adapter = [n for n in names if n.startswith(ADAPTER + ".")]
    if not adapter:
        return None
    if any(n.startswith(f"{ADAPTER}.hidden.") for n in adapter):
        return "two-hop-mlp"
    if any(n.startswith(f"{ADAPTER}.hops.") for n in adapter):
        return "two-hop"
    if any(n.startswith(f"{ADAPTER}.terms.") for n in adapter):
        return "stream"
    if any(n.startswith(f"{ADAPTER}.mix.") for n in adapter):
        return "contributions"
    raise ValueError(f"adapter tensors of no known kind: {sorted(adapter)[:3]} (a removed kind?)")


def identity_adapter_parameters(model: VisionTransformer, kind: AdapterKind) -> dict[str, torch.Tensor]:
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
    captured = _PENDING.pop(adapter, None)
    if captured is None or len(captured["residual"]) != len(tokens):
        raise RuntimeError(
            f"the {adapter_kind(model)} adapter reads a full-image pass of masked_tokens (none kept)"
        )
    return adapter(captured, model, tokens)
