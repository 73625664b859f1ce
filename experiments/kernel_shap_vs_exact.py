"""Kernel SHAP against exact Shapley values on a trained tiny ViT (16 patches, probability game).

python experiments/kernel_shap_vs_exact.py --images 4 --budgets 150 500 2000
"""

from __future__ import annotations

import argparse

import torch

from explainvec.data import load_data
from explainvec.evaluation.metrics import pearson
from explainvec.models.checkpoint import load_checkpoint
from explainvec.shapley import exact_shapley, kernel_shap
from explainvec.shapley.model_games import MaskedModelGame
from explainvec.training.base_cache import cached_base
from explainvec.training.config import TrainConfig
from explainvec.training.finetune import finetune


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="synthetic:geo")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--budgets", type=int, nargs="+", default=[150, 500, 2000])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    base = load_checkpoint(cached_base("4x4"))
    model = finetune(base, args.data, TrainConfig(epochs=4)).model
    test = load_data(args.data, "test", size=args.images, preprocess=base.meta.preprocess, patch_size=8)
    images = torch.stack([test[i][0] for i in range(args.images)])
    game = MaskedModelGame(model, images)
    exact = exact_shapley(game, chunk_size=4096)
    predicted = exact.full.argmax(-1)
    truth = exact.values[torch.arange(len(images)), :, predicted]
    print(f"exact: {exact.evaluations} evaluations per image, efficiency gap {exact.efficiency_gap():.1e}")
    print("| budget | mean abs error | RMSE | mean std error | Pearson (predicted class) | efficiency gap |")
    print("|---|---|---|---|---|---|")
    for budget in args.budgets:
        stats = []
        for seed in range(args.seeds):
            estimate = kernel_shap(game, budget, generator=torch.Generator().manual_seed(seed))
            error = estimate.values - exact.values
            mine = estimate.values[torch.arange(len(images)), :, predicted]
            stats.append([error.abs().mean().item(), error.pow(2).mean().sqrt().item(),
                          estimate.std_errors.mean().item(), pearson(mine, truth).mean().item(),
                          estimate.efficiency_gap()])  # fmt: skip
        mean = torch.tensor(stats).mean(0).tolist()
        print(f"| {budget} | {mean[0]:.2e} | {mean[1]:.2e} | {mean[2]:.2e} | {mean[3]:.4f} | {mean[4]:.1e} |")


if __name__ == "__main__":
    main()
