import pytest
import torch

from explainvec.models.adapter import has_adapter
from explainvec.models.masking import (
    CPU_CHUNK_ELEMENTS,
    complementary_pairs,
    key_mask,
    leading_rows,
    masked_logits,
    masked_prefix_tokens,
    masked_tokens,
    paired_prefix_tokens,
    segment_mask,
    sequence_chunks,
)
from explainvec.models.vit import build_vit, embed
from explainvec.shapley import kernel_shap, sample_kernel_coalitions
from explainvec.shapley.model_games import MaskedModelGame
from explainvec.training.supervision import AmortisedGameLoss


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


def small_vit(**overrides):
    """A random 4x4 ViT (img 32, patch 8, dim 32, depth 2) with 5 classes, in eval mode."""
    torch.manual_seed(0)
    architecture = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=5)
    model = build_vit({**architecture, **overrides}).eval()
    if has_adapter(model):  # a random adapter: it must not reach the class token
        for parameter in model.explain_adapter.parameters():
            torch.nn.init.normal_(parameter)
    return model


VARIANTS = {
    "plain": {},
    "registers": {"reg_tokens": 2},
    "registers, no class position": {"reg_tokens": 2, "no_embed_class": True},
    "stream adapter": {"explain_adapter": "stream"},
    "two-hop adapter": {"explain_adapter": "two-hop"},
    "two-hop-mlp adapter": {"explain_adapter": "two-hop-mlp"},
    "layer scale": {"init_values": 0.5},
}


def paired_masks(num_inputs: int, pairs: int, seed: int) -> torch.Tensor:
    """(all, ∅) followed by ``pairs − 1`` random complementary pairs of any size, ``[B, 2·pairs, 16]``."""
    first = torch.rand(num_inputs, pairs, 16, generator=torch.Generator().manual_seed(seed)) < 0.4
    first[:, 0] = True
    return torch.stack([first, ~first], dim=2).reshape(num_inputs, 2 * pairs, 16)


@torch.no_grad()
@pytest.mark.parametrize("variant", VARIANTS)
def test_packed_pairs_give_the_prefix_tokens_of_separate_masked_runs(variant):
    model = small_vit(**VARIANTS[variant])
    images = torch.randn(3, 3, 32, 32)
    keep = paired_masks(3, 4, seed=1)
    prefix = model.num_prefix_tokens
    separate = masked_tokens(model, images, keep)[:, :prefix]
    packed = paired_prefix_tokens(model, images, keep)
    assert packed.shape == separate.shape == (3 * 8, prefix, 32)
    torch.testing.assert_close(packed, separate, atol=1e-5, rtol=0)


@torch.no_grad()
def test_packed_pairs_equal_dropping_tokens():
    """Against the independent reference: each coalition's class token from its own shortened sequence."""
    model = small_vit()
    images = torch.randn(2, 3, 32, 32)
    keep = paired_masks(2, 3, seed=2)
    packed = paired_prefix_tokens(model, images, keep).reshape(2, 6, 1, -1)
    for b in range(2):
        for m in range(6):
            expected, _ = dropped_sequence_tokens(model, images[b], keep[b, m])
            torch.testing.assert_close(packed[b, m, 0], expected[0], atol=1e-5, rtol=0)


@torch.no_grad()
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("output", ["embedding", "logit", "probability"])
def test_masked_game_values_are_the_same_packed_or_not(variant, output):
    model = small_vit(**VARIANTS[variant])
    images = torch.randn(4, 3, 32, 32)
    keep = paired_masks(4, 5, seed=3)
    packed = MaskedModelGame(model, images, output)(keep)
    separate = MaskedModelGame(model, images, output, pack_pairs=False)(keep)
    assert packed.shape == separate.shape == (4, 10, 32 if output == "embedding" else 5)
    torch.testing.assert_close(packed, separate, atol=1e-5, rtol=0)


def test_complementary_pairs_are_detected_only_when_every_pair_is():
    keep = paired_masks(3, 4, seed=4)
    assert complementary_pairs(keep)
    assert complementary_pairs(sample_kernel_coalitions(3, 16, 6, generator=torch.Generator().manual_seed(0)))
    assert not complementary_pairs(sample_kernel_coalitions(3, 16, 6, paired=False))
    assert not complementary_pairs(keep[:, 1:7])  # pairs shifted by one
    assert not complementary_pairs(keep[:, :7])  # odd count
    broken = keep.clone()
    broken[2, 5, 0] = ~broken[2, 5, 0]  # one player of one image in both halves of a pair
    assert not complementary_pairs(broken)
    with pytest.raises(ValueError, match="complement"):
        paired_prefix_tokens(small_vit(), torch.randn(3, 3, 32, 32), broken)


@torch.no_grad()
def test_masked_game_falls_back_to_separate_runs_for_unpaired_masks():
    model = small_vit()
    images = torch.randn(2, 3, 32, 32)
    keep = paired_masks(2, 3, seed=5)
    keep[1, 3, 7] = ~keep[1, 3, 7]
    values = MaskedModelGame(model, images, "logit")(keep)
    for b in range(2):
        expected = masked_logits(model, images[b : b + 1], keep[b])
        torch.testing.assert_close(values[b], expected, atol=1e-5, rtol=0)


@torch.no_grad()
def test_segment_mask_separates_the_two_coalitions_of_a_pair():
    first = torch.tensor([[True, False, True]])
    mask = segment_mask(first, 2, torch.float32)[0, 0]  # tokens: 2 + 2 prefix, then 3 patches
    sees = mask == 0
    segment = torch.tensor([0, 0, 1, 1, 0, 1, 0])
    assert torch.equal(sees, segment[:, None] == segment[None, :])
    assert mask[~sees].eq(float("-inf")).all()


@torch.no_grad()
def test_kernel_shap_is_unchanged_by_packing():
    model = small_vit(reg_tokens=1)
    images = torch.randn(3, 3, 32, 32)
    estimates = [
        kernel_shap(MaskedModelGame(model, images, "logit", pack_pairs=pack), 66,
                    generator=torch.Generator().manual_seed(7), chunk_size=16)
        for pack in (True, False)
    ]  # fmt: skip
    torch.testing.assert_close(estimates[0].values, estimates[1].values, atol=1e-5, rtol=0)
    torch.testing.assert_close(estimates[0].std_errors, estimates[1].std_errors, atol=1e-5, rtol=0)
    torch.testing.assert_close(estimates[0].base, estimates[1].base, atol=1e-5, rtol=0)


@pytest.mark.parametrize("output", ["embedding", "probability"])
def test_amortised_loss_is_unchanged_by_packing(output):
    model = small_vit(explain_adapter="two-hop").train()
    value_model = small_vit()
    images, indices = torch.randn(4, 3, 32, 32), torch.arange(4)
    losses, grads = [], []
    for pack in (True, False):
        loss_fn = AmortisedGameLoss(value_model, output=output, num_coalitions=8, seed=3, pack_pairs=pack)
        model.zero_grad()
        loss = loss_fn(model, images, indices, masked_tokens(model, images))
        loss.backward()
        losses.append(loss.detach())
        grads.append(model.explain_adapter.hops.weight.grad.clone())
    assert losses[0] > 0 and grads[0].abs().sum() > 0
    torch.testing.assert_close(losses[0], losses[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_sequence_chunks_cover_every_sequence_once_within_the_budget():
    tokens = torch.zeros(2, 18, 32)  # 576 elements per sequence
    chunks = sequence_chunks(10, tokens, 3 * 576 + 5)
    assert [(c.start, c.stop) for c in chunks] == [(0, 3), (3, 6), (6, 9), (9, 12)]
    assert sequence_chunks(10, tokens, 1) == [slice(i, i + 1) for i in range(10)]  # at least one sequence
    assert sequence_chunks(10, tokens, None) == [slice(0, CPU_CHUNK_ELEMENTS // 576)]


@torch.no_grad()
@pytest.mark.parametrize("pack_pairs", [True, False])
def test_chunked_evaluation_equals_one_call(pack_pairs):
    model = small_vit(reg_tokens=2)
    images = torch.randn(3, 3, 32, 32)
    keep = paired_masks(3, 3, seed=6)
    one_call = masked_prefix_tokens(model, images, keep, pack_pairs=pack_pairs, chunk_elements=10**9)
    per_sequence = (2 if pack_pairs else 1) * model.num_prefix_tokens + 16
    chunked = masked_prefix_tokens(
        model, images, keep, pack_pairs=pack_pairs, chunk_elements=4 * per_sequence * 32
    )
    torch.testing.assert_close(chunked, one_call, atol=1e-5, rtol=0)
    torch.testing.assert_close(one_call, masked_tokens(model, images, keep)[:, :3], atol=1e-5, rtol=0)


@torch.no_grad()
@pytest.mark.parametrize("pack_pairs", [True, False])
def test_leading_rows_of_the_last_block_equal_the_whole_block(pack_pairs):
    model = small_vit(reg_tokens=2, init_values=0.5)
    tokens = torch.randn(6, (2 if pack_pairs else 1) * 3 + 16, 32)
    keep = paired_masks(6, 1, seed=7)[:, 1]
    mask = segment_mask(keep, 3, tokens.dtype) if pack_pairs else key_mask(keep, 3)
    last = model.blocks[-1]
    whole = last(tokens, attn_mask=mask)
    torch.testing.assert_close(leading_rows(last, tokens, mask, 6), whole[:, :6], atol=1e-6, rtol=0)


@torch.no_grad()
def test_leading_rows_run_other_block_types_whole():
    from timm.models.vision_transformer import ResPostBlock

    torch.manual_seed(8)
    block = ResPostBlock(32, num_heads=2).eval()
    tokens = torch.randn(3, 17, 32)
    mask = key_mask(torch.rand(3, 16) < 0.5, 1)
    torch.testing.assert_close(leading_rows(block, tokens, mask, 1), block(tokens, attn_mask=mask)[:, :1])
