import pytest
import torch

from explainvec.models.masking import key_mask, masked_logits, masked_tokens
from explainvec.models.vit import embed


def dropped_sequence_tokens(model, image, keep):
    """Reference: physically drop the removed patch tokens and run the shorter sequence."""
    tokens = embed(model, image[None])
    index = torch.cat([torch.zeros(1, dtype=torch.long), 1 + keep.nonzero().flatten()])
    tokens = tokens[:, index]
    for block in model.blocks:
        tokens = block(tokens)
    return model.norm(tokens)[0], index


@torch.no_grad()
@pytest.mark.parametrize("share", [1.0, 0.75, 0.3, 0.0])
def test_attention_masking_equals_dropping_tokens(tiny_vit, share):
    torch.manual_seed(1)
    images = torch.randn(3, 3, 32, 32)
    keep = torch.rand(3, 2, 16) < share  # two different coalitions per image
    tokens = masked_tokens(tiny_vit, images, keep).reshape(3, 2, 17, -1)
    for b in range(3):
        for m in range(2):
            expected, index = dropped_sequence_tokens(tiny_vit, images[b], keep[b, m])
            torch.testing.assert_close(tokens[b, m, index], expected, atol=1e-5, rtol=0)


@torch.no_grad()
def test_timm_forward_features_with_attn_mask_agrees(tiny_vit):
    images = torch.randn(4, 3, 32, 32)
    keep = torch.rand(4, 16) < 0.5
    ours = masked_tokens(tiny_vit, images, keep)
    timm_tokens = tiny_vit.forward_features(images, attn_mask=key_mask(keep, tiny_vit.num_prefix_tokens))
    torch.testing.assert_close(ours[:, 0], timm_tokens[:, 0], atol=1e-5, rtol=0)


@torch.no_grad()
def test_all_kept_equals_plain_forward(tiny_vit):
    images = torch.randn(2, 3, 32, 32)
    keep = torch.ones(2, 16, dtype=torch.bool)
    torch.testing.assert_close(masked_logits(tiny_vit, images, keep), tiny_vit(images), atol=1e-5, rtol=0)
    torch.testing.assert_close(masked_logits(tiny_vit, images), tiny_vit(images), atol=1e-6, rtol=0)
