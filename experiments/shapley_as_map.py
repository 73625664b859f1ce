"""How good can a faithful map be on insertion − deletion? The reference Shapley values (Kernel SHAP of
the logit game) read as a map, beside attention rollout and the direct attribution, on a study's test
images of each target (the study's 32 images and its reference budget by default).

    python experiments/shapley_as_map.py runs/scenes/<target>.safetensors ... --data synthetic:scene-glyphs
"""

from __future__ import annotations

import numpy as np
import torch
from target_reference import map_study_arguments, with_reference

from explainvec.evaluation import metrics as m
from explainvec.evaluation.baselines import get_attributor
from explainvec.evaluation.suite import of_class
from explainvec.shapley.model_games import MaskedModelGame

MAPS = ("Shapley values", "rollout", "direct_attribution")


def main() -> None:
    args = map_study_arguments(__doc__, images=32, budget=2048)
    scores: dict[str, list[float]] = {name: [] for name in MAPS}
    for path in args.targets:
        model, batch, reference = with_reference(path, args.data, args.images, args.budget)
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
