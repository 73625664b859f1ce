"""The value functions of real ViTs, and the Shapley estimators on them."""

import torch

from explainvec.models.masking import masked_logits
from explainvec.models.vit import build_vit
from explainvec.shapley import exact_shapley, kernel_shap
from explainvec.shapley.model_games import MaskedModelGame, PixelMaskedGame


@torch.no_grad()
def test_masked_game_mixes_coalitions_per_image(tiny_vit):
    images = torch.randn(2, 3, 32, 32)
    masks = torch.rand(2, 3, 16) < 0.5
    values = MaskedModelGame(tiny_vit, images, "logit")(masks)
    for b in range(2):
        for m in range(3):
            expected = masked_logits(tiny_vit, images[b : b + 1], masks[b, m][None])
            torch.testing.assert_close(values[b, m], expected[0], atol=1e-5, rtol=0)
    probabilities = MaskedModelGame(tiny_vit, images)(masks)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2, 3))


@torch.no_grad()
def test_pixel_game_fills_removed_patches(tiny_vit):
    images = torch.randn(1, 3, 32, 32)
    game = PixelMaskedGame.for_vit(tiny_vit, images, output="logit")
    keep = torch.zeros(1, 1, 16, dtype=torch.bool)
    keep[0, 0, 5] = True  # row 1, column 1
    expected_input = torch.zeros_like(images)
    expected_input[..., 8:16, 8:16] = images[..., 8:16, 8:16]
    torch.testing.assert_close(game(keep)[0, 0], tiny_vit(expected_input)[0], atol=1e-5, rtol=0)
    full = game(torch.ones(1, 1, 16, dtype=torch.bool))
    torch.testing.assert_close(full[0, 0], tiny_vit(images)[0], atol=1e-5, rtol=0)


def test_kernel_shap_on_a_real_vit_converges_to_exact():
    torch.manual_seed(0)
    vit = build_vit({"img_size": 24, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2,
                     "num_classes": 3}).eval()  # fmt: skip
    images = torch.randn(3, 3, 24, 24)
    game = MaskedModelGame(vit, images)
    exact = exact_shapley(game)
    assert exact.efficiency_gap() < 1e-5
    errors = []
    for budget in (20, 150, 2000):
        estimate = kernel_shap(game, budget, generator=torch.Generator().manual_seed(1))
        assert estimate.efficiency_gap() < 1e-5
        errors.append((estimate.values - exact.values).abs().mean().item())
    assert errors[2] < errors[1] < errors[0]
