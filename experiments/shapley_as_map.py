"""How good can a faithful map be on insertion − deletion? The reference Shapley values (Kernel SHAP of
the logit game) read as a map, beside attention rollout and the direct attribution, on a study's test
images of each target (the study's 32 images and its reference budget by default).

    python experiments/shapley_as_map.py runs/scenes/<target>.safetensors ... --data synthetic:scene-glyphs
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from explainvec.evaluation import metrics as m
from explainvec.evaluation.baselines import get_attributor
from explainvec.evaluation.evaluate import suite_batch
from explainvec.evaluation.suite import SuiteConfig, of_class, reference_values
from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.shapley.model_games import MaskedModelGame

MAPS = ("Shapley values", "rollout", "direct_attribution")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("targets", nargs="+", help="prediction-only checkpoints")
    parser.add_argument("--data", required=True)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--budget", type=int, default=2048)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scores: dict[str, list[float]] = {name: [] for name in MAPS}
    for path in args.targets:
        target = load_checkpoint(path)
        batch = suite_batch(target, args.data, args.images, None, target)
        model = SelfExplainingViT(target.model, target.meta.class_names, "logit").eval()
        config = SuiteConfig(reference_budget=args.budget, exact_reference=False)
        reference = reference_values(model, batch, config).values
        with torch.no_grad():
            out = model(batch.images)
            game = MaskedModelGame(model.vit, batch.images)
            line = []
            for name in MAPS:
                maps = (
                    reference if name == "Shapley values" else get_attributor(name)(model, batch.images, out)
                )
                insertion, deletion = m.insertion_deletion_auc(
                    game, of_class(maps, out.predicted), out.predicted
                )
                value = float((insertion - deletion).mean())
                scores[name].append(value)
                line.append(f"{name} {value:.3f}")
        print(path, "insertion − deletion:", " | ".join(line), flush=True)
    print("mean:", " | ".join(f"{name} {np.mean(v):.3f}" for name, v in scores.items()))


if __name__ == "__main__":
    main()
