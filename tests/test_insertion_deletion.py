"""Insertion/deletion on an additive model: a perfect map scores best, a reversed one worst."""

import torch

from explainvec.evaluation.insertion_deletion import curve_auc, insertion_deletion_auc
from explainvec.models.vit import build_vit
from explainvec.shapley import exact_shapley
from explainvec.shapley.model_games import MaskedModelGame


def test_perfect_reversed_and_random_orderings():
    torch.manual_seed(0)
    vit = build_vit({"img_size": 24, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2,
                     "num_classes": 2}).eval()  # fmt: skip
    images = torch.randn(6, 3, 24, 24)
    # Ground truth for this model: exact Shapley values of its probability game.
    classes = torch.zeros(6, dtype=torch.long)
    truth = exact_shapley(MaskedModelGame(vit, images)).values[:, :, 0]
    perfect = insertion_deletion_auc(vit, images, truth, classes)
    reversed_ = insertion_deletion_auc(vit, images, -truth, classes)
    random = insertion_deletion_auc(vit, images, torch.randn(6, 9), classes)
    assert (
        (perfect[0] - perfect[1]).mean()
        > (random[0] - random[1]).mean()
        > (reversed_[0] - reversed_[1]).mean()
    )


def test_auc_of_known_curves():
    curves = torch.tensor([[0.0, 0.5, 1.0], [1.0, 1.0, 1.0]])
    torch.testing.assert_close(curve_auc(curves), torch.tensor([0.5, 1.0]))
