"""The attention contributions behind the direct attribution and the ``contributions`` adapter: the folded
computation the single pass uses equals the one written out block by block."""

from __future__ import annotations

import torch

from explainvec.models.adapter import adapted_patches, add_adapter
from explainvec.models.contributions import (
    block_contributions,
    captured_attention,
    linearised_contributions,
    mixed_contributions,
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
