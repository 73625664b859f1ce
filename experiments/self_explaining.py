"""Self-explaining models on one source domain: accuracy and fidelity of the single-pass map.

For each variant ``supervision,alpha,lr,epochs,K[,bank|fresh]``: train it from the source's
prediction-only model (head frozen, no patch dropping; coalitions from a bank evaluated once per image,
or fresh every step), then report test accuracy and the Pearson correlation, per image, of its map for
the predicted class with Kernel SHAP-2048 of its own game (probability and logit), and with exact
Shapley values of its own read-out game on the first ``--exact`` images. ``--checkpoints`` scores
checkpoints made elsewhere (e.g. by ``explainvec train``) instead of training.

    python experiments/self_explaining.py --preset 4x4 --data synthetic:geo \\
        amortised,1,3e-4,4,16 embedding,0.05,3e-4,4,16,fresh
    python experiments/self_explaining.py --exact 8 --checkpoints predict.safetensors sem.safetensors
"""

from __future__ import annotations

import argparse
import time

import torch

from explainvec.data import load_data
from explainvec.evaluation.evaluate import evaluate_checkpoint
from explainvec.evaluation.metrics import pearson
from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.shapley import exact_shapley, kernel_shap
from explainvec.shapley.model_games import MaskedModelGame
from explainvec.training.base_cache import cached_base
from explainvec.training.config import TrainConfig
from explainvec.training.explain import train_explainer
from explainvec.training.finetune import finetune


def of_predicted(values: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    return values[torch.arange(len(predicted)), :, predicted]


def score(checkpoint, data: str, images: torch.Tensor, exact_images: int, kernel_shap_: bool = True) -> dict:
    sem = SelfExplainingViT.from_checkpoint(checkpoint).eval()
    with torch.no_grad():
        out = sem(images)
    mine = out.for_class()
    row = {"accuracy": evaluate_checkpoint(checkpoint, data, size=500).accuracy, "readout": sem.readout}
    for game in ("probability", "logit") if kernel_shap_ else ():
        reference = kernel_shap(
            MaskedModelGame(sem.vit, images, game), 2048, generator=torch.Generator().manual_seed(0)
        )
        row[f"pearson_ks2048_{game}"] = (
            pearson(mine, of_predicted(reference.values, out.predicted)).mean().item()
        )
    if exact_images:
        exact = exact_shapley(MaskedModelGame(sem.vit, images[:exact_images], sem.readout), chunk_size=4096)
        reference = of_predicted(exact.values, out.predicted[:exact_images])
        row["pearson_exact_own"] = pearson(mine[:exact_images], reference).mean().item()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("variants", nargs="*", help="supervision,alpha,lr,epochs,K[,bank|fresh]")
    parser.add_argument("--checkpoints", nargs="+", default=[], help="score these instead of training")
    parser.add_argument("--preset", default="4x4")
    parser.add_argument("--data", default="synthetic:geo")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--exact", type=int, default=0, help="images also scored against exact values")
    parser.add_argument("--no-kernel-shap", action="store_true", help="--checkpoints: exact values only")
    args = parser.parse_args()

    if args.checkpoints:
        checkpoints = {path: load_checkpoint(path) for path in args.checkpoints}
        preprocess = next(iter(checkpoints.values())).meta.preprocess
        test = load_data(args.data, "test", size=args.images, preprocess=preprocess, patch_size=8)
        images = torch.stack([test[i][0] for i in range(args.images)])
        rows = {
            path: score(c, c.meta.training.data, images, args.exact, not args.no_kernel_shap)
            for path, c in checkpoints.items()
        }
        return print_table(rows)
    base = load_checkpoint(cached_base(args.preset))
    predict = finetune(base, args.data, TrainConfig(epochs=4, train_size=2000, eval_size=500))
    test = load_data(args.data, "test", size=args.images, preprocess=base.meta.preprocess, patch_size=8)
    images = torch.stack([test[i][0] for i in range(args.images)])
    rows = {"predict (λ = 0 map)": score(predict, args.data, images, args.exact)}
    for variant in args.variants:
        supervision, alpha, lr, epochs, k, *coalitions = variant.split(",")
        config = TrainConfig(epochs=int(epochs), lr=float(lr), keep_min=1.0, freeze_head=True)
        start = time.perf_counter()
        sem = train_explainer(base, predict, args.data, config, supervision=supervision, alpha=float(alpha),
                              num_coalitions=int(k), bank=coalitions != ["fresh"], init="value")  # fmt: skip
        rows[variant] = {**score(sem, args.data, images, args.exact), "train_s": time.perf_counter() - start}
        print(variant, rows[variant], flush=True)
    print_table(rows)


def print_table(rows: dict[str, dict]) -> None:
    columns = sorted({c for r in rows.values() for c in r})
    print("| variant | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, row in rows.items():
        cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, "—")) for c in columns]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
