"""The attention contributions behind the direct attribution and the ``contributions`` adapter: the folded
computation the single pass uses equals the one written out block by block."""

from __future__ import annotations

import pytest
import torch

from explainvec.models.adapter import adapted_patches, add_adapter, identity_adapter_parameters
from explainvec.models.contributions import (
    HOP_TERMS,
    STREAM_TERMS,
    attention_weights,
    block_contributions,
    captured_attention,
    hop_terms,
    linearised_contributions,
    mixed_contributions,
    stream_terms,
    two_hop_terms,
)
from explainvec.models.masking import masked_tokens
from explainvec.models.vit import build_vit


def small_vit(**overrides):
    torch.manual_seed(0)
    architecture = dict(img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=2, num_classes=5)
    return build_vit({**architecture, **overrides}).eval()


@torch.no_grad()
def test_folded_mix_equals_the_mix_of_the_linearised_contributions_written_out():
    vit = small_vit(init_values=0.3)  # layer scale too
    images = torch.randn(3, 3, 32, 32)
    with captured_attention(vit) as captured:
        vit.forward_features(images)
    shares = block_contributions(vit, captured)
    residual = captured["residual"][:, 0]
    sigma = (residual.var(-1, unbiased=False, keepdim=True) + vit.norm.eps).sqrt()[:, :, None, None]
    written = (shares - shares.mean(-1, keepdim=True)) * vit.norm.weight / sigma
    torch.testing.assert_close(linearised_contributions(vit, captured), written, atol=1e-4, rtol=1e-4)
    mixes = [torch.randn(7, 32) for _ in vit.blocks]
    expected = sum(written[:, 1:, i] @ mix.T for i, mix in enumerate(mixes))
    torch.testing.assert_close(mixed_contributions(vit, captured, mixes, 1), expected, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_a_trained_contributions_adapter_reads_its_mix_of_contributions_and_final_tokens():
    vit = small_vit()
    add_adapter(vit, "contributions")
    torch.nn.init.normal_(vit.explain_adapter.mix.weight, std=0.1)
    torch.nn.init.normal_(vit.explain_adapter.mix.bias)
    images = torch.randn(2, 3, 32, 32)
    tokens = masked_tokens(vit, images)
    adapted = adapted_patches(vit, tokens)
    with captured_attention(vit) as captured:
        vit.forward_features(images)
    features = torch.cat([linearised_contributions(vit, captured)[:, 1:].flatten(2), tokens[:, 1:]], -1)
    torch.testing.assert_close(adapted, vit.explain_adapter.mix(features), atol=1e-4, rtol=1e-4)
    # the contributions are handed over once: a second read without a new pass is refused
    try:
        adapted_patches(vit, tokens)
    except RuntimeError as error:
        assert "full-image pass" in str(error)
    else:
        raise AssertionError("a second read of one pass's contributions was not refused")


def class_token_pieces(vit, images):
    """The class token's attention and MLP outputs (after layer scale) in every block, and the residual
    entering the final norm, from hooks on the real forward pass."""
    attention, mlp = [], []
    hooks = [b.ls1.register_forward_hook(lambda m, a, out: attention.append(out[:, 0])) for b in vit.blocks]
    hooks += [b.ls2.register_forward_hook(lambda m, a, out: mlp.append(out[:, 0])) for b in vit.blocks]
    with captured_attention(vit) as captured:
        vit.forward_features(images)
    for hook in hooks:
        hook.remove()
    return attention, mlp, captured


@torch.no_grad()
def test_stream_terms_add_up_to_the_class_tokens_attention_and_mlp_in_every_block():
    vit = small_vit(init_values=0.3)
    for block in vit.blocks:  # biases that are not zero, so the class token's slot must carry them
        torch.nn.init.normal_(block.attn.proj.bias, std=0.5)
        torch.nn.init.normal_(block.mlp.fc2.bias, std=0.5)
        torch.nn.init.normal_(block.norm1.bias, std=0.5)
    images = torch.randn(3, 3, 32, 32)
    attention, mlp, captured = class_token_pieces(vit, images)
    terms = {(name, block): term for name, block, term in stream_terms(vit, captured)}
    assert sorted({name for name, _ in terms}) == sorted(STREAM_TERMS)
    residual = captured["first"].clone()
    for i, block in enumerate(vit.blocks):
        sent, own = terms["sent", i], terms["own", i]
        # the class token's attention to itself, split by token, adds up to what it sends itself
        torch.testing.assert_close(own.sum(1), sent[:, 0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(
            sent.sum(1) + block.ls1(block.attn.proj.bias), attention[i], atol=1e-4, rtol=1e-4
        )
        torch.testing.assert_close(terms["mlp", i].sum(1), mlp[i], atol=1e-4, rtol=1e-4)
        # a token's share of the attention output: the shares of the output add up to the output
        torch.testing.assert_close(terms["centred", i].sum(1), sent.sum(1), atol=1e-4, rtol=1e-4)
        residual = residual + attention[i] + mlp[i]
    torch.testing.assert_close(residual, captured["residual"][:, 0], atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_a_stream_adapter_starts_as_the_direct_attribution_and_reads_its_mix_of_terms():
    vit = small_vit()
    images = torch.randn(2, 3, 32, 32)
    add_adapter(vit, "stream")
    tokens = masked_tokens(vit, images)
    with captured_attention(vit) as captured:
        vit.forward_features(images)
    direct = mixed_contributions(vit, captured, [torch.eye(32)] * len(vit.blocks), 1)
    torch.testing.assert_close(adapted_patches(vit, tokens), direct, atol=1e-4, rtol=1e-4)
    torch.nn.init.normal_(vit.explain_adapter.terms.weight, std=0.1)
    tokens = masked_tokens(vit, images)
    sigma = (captured["residual"][:, 0].var(-1, unbiased=False) + vit.norm.eps).sqrt()[:, None, None]
    written = [
        (term - term.mean(-1, keepdim=True)) * vit.norm.weight / sigma
        for _, _, term in stream_terms(vit, captured)
    ]
    features = torch.cat([*(w[:, 1:] for w in written), tokens[:, 1:]], -1)
    torch.testing.assert_close(
        adapted_patches(vit, tokens), vit.explain_adapter.terms(features), atol=1e-4, rtol=1e-4
    )


@torch.no_grad()
def test_hop_terms_move_each_blocks_sent_terms_along_the_rollout_of_the_blocks_before():
    vit = small_vit(init_values=0.3)
    images = torch.randn(3, 3, 32, 32)
    with captured_attention(vit) as captured:
        vit.forward_features(images)
    sent = {block: term for name, block, term in stream_terms(vit, captured) if name == "sent"}
    terms = hop_terms(vit, captured, [sent[block] for block in sorted(sent)])
    hops = {(name, block): term for name, block, term in terms}
    assert sorted(hops) == sorted((name, b) for name in HOP_TERMS for b in range(1, len(vit.blocks)))
    tokens = sent[0].shape[1]
    rollout = torch.eye(tokens).expand(3, tokens, tokens)
    for block, qkv in zip(vit.blocks[:2], captured["qkv"][:2], strict=True):
        rollout = (0.5 * torch.eye(tokens) + 0.5 * attention_weights(block, qkv)[0].mean(1)) @ rollout
    # written out for one token j of the third block: what the others carried of it, and what it carried
    j, off = 4, rollout * (1 - torch.eye(tokens))
    moved_in = sum(off[:, i, j, None] * sent[2][:, i] for i in range(tokens) if i != j)
    torch.testing.assert_close(hops["moved_in", 2][:, j], moved_in, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(hops["moved_out", 2][:, j], off[:, j].sum(-1)[:, None] * sent[2][:, j])
    for block in range(1, len(vit.blocks)):  # what moves in is what moves out: the total is kept
        torch.testing.assert_close(
            hops["moved_in", block].sum(1), hops["moved_out", block].sum(1), atol=1e-4, rtol=1e-4
        )


@torch.no_grad()
def test_a_two_hop_adapter_starts_as_the_stream_adapter_and_adds_its_mix_of_hop_terms():
    vit = small_vit()
    images = torch.randn(2, 3, 32, 32)
    add_adapter(vit, "two-hop")
    torch.nn.init.normal_(vit.explain_adapter.terms.weight, std=0.1)
    tokens = masked_tokens(vit, images)
    stream = vit.explain_adapter.terms.weight.clone()
    started = adapted_patches(vit, tokens)
    plain = small_vit()
    add_adapter(plain, "stream")
    plain.explain_adapter.terms.weight.copy_(stream)
    torch.testing.assert_close(started, adapted_patches(plain, masked_tokens(plain, images)))
    torch.nn.init.normal_(vit.explain_adapter.hops.weight, std=0.1)
    with captured_attention(vit) as captured:
        vit.forward_features(images)
    sigma = (captured["residual"][:, 0].var(-1, unbiased=False) + vit.norm.eps).sqrt()[:, None, None]
    sent = [term for name, _, term in stream_terms(vit, captured) if name == "sent"]
    written = [
        (t - t.mean(-1, keepdim=True)) * vit.norm.weight / sigma for _, _, t in hop_terms(vit, captured, sent)
    ]
    expected = started + vit.explain_adapter.hops(torch.cat([w[:, 1:] for w in written], -1))
    torch.testing.assert_close(
        adapted_patches(vit, masked_tokens(vit, images)), expected, atol=1e-4, rtol=1e-4
    )


@torch.no_grad()
def test_a_two_hop_mlp_adapter_adds_a_hidden_layer_map_of_the_same_terms_to_the_two_hop_one():
    vit = small_vit()
    images = torch.randn(2, 3, 32, 32)
    add_adapter(vit, "two-hop-mlp")
    adapter = vit.explain_adapter
    for weight in (adapter.terms.weight, adapter.hops.weight, adapter.hidden.bias):
        torch.nn.init.normal_(weight, std=0.1)
    plain = small_vit()
    add_adapter(plain, "two-hop")
    plain.explain_adapter.load_state_dict(adapter.state_dict(), strict=False)
    two_hop = adapted_patches(plain, masked_tokens(plain, images))
    # its output layer starts at zero: the two-hop map, whatever the hidden layer holds
    torch.testing.assert_close(adapted_patches(vit, masked_tokens(vit, images)), two_hop)
    torch.nn.init.normal_(adapter.out.weight, std=0.1)
    tokens = masked_tokens(vit, images)
    with captured_attention(vit) as captured:
        vit.forward_features(images)
    sigma = (captured["residual"][:, 0].var(-1, unbiased=False) + vit.norm.eps).sqrt()[:, None, None]
    written = [
        (t - t.mean(-1, keepdim=True)) * vit.norm.weight / sigma for _, _, t in two_hop_terms(vit, captured)
    ]
    features = torch.cat([*(w[:, 1:] for w in written), tokens[:, 1:]], -1)
    expected = two_hop + adapter.out(torch.nn.functional.gelu(adapter.hidden(features)))
    torch.testing.assert_close(adapted_patches(vit, tokens), expected, atol=1e-4, rtol=1e-4)
    # the hidden layer's start is a fixed draw: the identity τ is relative to is the same everywhere
    again = small_vit()
    torch.manual_seed(1)
    add_adapter(again, "two-hop-mlp")
    assert torch.equal(
        again.explain_adapter.hidden.weight,
        identity_adapter_parameters(vit, "two-hop-mlp")["explain_adapter.hidden.weight"],
    )


def test_a_stream_adapter_is_refused_on_blocks_it_cannot_split():
    vit = small_vit(scale_mlp_norm=True)  # a norm inside the MLP: its split by token would be wrong
    with pytest.raises(ValueError, match=r"block 0 .*--adapter contributions"):
        add_adapter(vit, "stream")
    assert not hasattr(vit, "explain_adapter")
