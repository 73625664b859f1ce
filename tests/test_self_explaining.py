import torch
from tests.test_checkpoint import meta_for

from explainvec.models.checkpoint import Checkpoint, save_checkpoint
from explainvec.models.masking import masked_logits
from explainvec.models.self_explaining import SelfExplainingViT, load


def head_on_patches_minus_mean(vit, images):
    """The map computed independently of the library: the head on the final patch tokens, minus its mean
    over patches ``[B, P, C]`` (before the shift by ``total / P``)."""
    patches = vit.forward_features(images)[:, vit.num_prefix_tokens :]
    raw = patches @ vit.head.weight.T + vit.head.bias
    return raw - raw.mean(dim=1, keepdim=True)


@torch.no_grad()
def test_attributions_are_the_head_on_patch_tokens_summing_to_full_minus_empty(tiny_vit):
    images = torch.randn(4, 3, 32, 32)
    for readout in ("probability", "logit"):
        sem = SelfExplainingViT(tiny_vit, list("abcde"), readout)
        out = sem(images)
        assert out.attributions.shape == (4, 16, 5)
        empty_logits = masked_logits(tiny_vit, images, torch.zeros(4, 16, dtype=torch.bool))
        values = (lambda z: z.softmax(-1)) if readout == "probability" else (lambda z: z)
        total = values(out.logits) - values(empty_logits)
        torch.testing.assert_close(out.attributions.sum(1), total, atol=1e-5, rtol=0)
        expected = head_on_patches_minus_mean(tiny_vit, images) + total[:, None, :] / 16
        torch.testing.assert_close(out.attributions, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(out.logits, tiny_vit(images), atol=1e-5, rtol=0)


@torch.no_grad()
def test_empty_value_is_cached_and_invalidated_by_weight_changes(tiny_vit):
    sem = SelfExplainingViT(tiny_vit, list("abcde"))
    first = sem.empty_value()
    assert sem.empty_value() is first
    tiny_vit.head.bias += 1.0
    assert not torch.equal(sem.empty_value(), first)


@torch.no_grad()
def test_heatmap_is_the_patch_grid_upsampled(tiny_vit):
    images = torch.randn(2, 3, 32, 32)
    out = SelfExplainingViT(tiny_vit, list("abcde"))(images)
    heat = out.heatmap(2)
    assert heat.shape == (2, 32, 32)
    grid = out.attributions[:, :, 2].reshape(2, 4, 4)
    torch.testing.assert_close(heat, grid.repeat_interleave(8, 1).repeat_interleave(8, 2), atol=0, rtol=0)
    # patch 13 is row 3, column 1 of the grid; its value is the head's, not only the shared total / P
    centred = heat - heat.mean((1, 2), keepdim=True)  # every pixel minus the shared total / P
    head = head_on_patches_minus_mean(tiny_vit, images)[:, 13, 2]
    torch.testing.assert_close(centred[:, 24:, 8:16], head[:, None, None].expand(2, 8, 8), atol=1e-5, rtol=0)
    predicted = out.for_class()
    assert torch.equal(predicted, out.attributions[torch.arange(2), :, out.predicted])
    # smooth: bilinear from patch centres (align_corners=False), 8 pixels per patch. Pixel column x reads the
    # grid at (x + 0.5) / 8 − 0.5, clamped at the border: the top-left 4×4 pixels are patch (0, 0); pixel
    # (0, 7) reads 0.4375 of the way from patch (0, 0) to patch (0, 1)
    smooth = out.heatmap(2, smooth=True)
    assert smooth.shape == (2, 32, 32)
    torch.testing.assert_close(smooth[:, :4, :4], grid[:, :1, :1].expand(2, 4, 4), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        smooth[:, 0, 7], 0.5625 * grid[:, 0, 0] + 0.4375 * grid[:, 0, 1], atol=1e-6, rtol=0
    )


def test_load_any_checkpoint(tiny_vit, tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", Checkpoint(tiny_vit, meta_for(tiny_vit)))
    model = load(path)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert model.readout == "logit" and out.class_names == list("abcde")


@torch.no_grad()
def test_explain_and_evaluate_read_a_prediction_only_checkpoint_the_same_way(tiny_vit, tmp_path):
    from explainvec.evaluation.plan import Comparison, plan_rows
    from explainvec.models.checkpoint import load_checkpoint

    path = save_checkpoint(tmp_path / "m.safetensors", Checkpoint(tiny_vit, meta_for(tiny_vit)))
    images = torch.randn(3, 3, 32, 32)
    shown = load(path)(images).attributions  # what `explainvec explain` writes
    scored = plan_rows(load_checkpoint(path), Comparison(baselines=())).rows[0].method.model(images)
    torch.testing.assert_close(scored.attributions, shown, atol=0, rtol=0)
