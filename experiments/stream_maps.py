"""Training-free maps from the class token's residual stream split by token (``stream_terms``): which
terms, read by the head, track the Shapley values of an ordinary ViT.

Prints, per target, the Pearson (predicted class) against Kernel SHAP of the logit game of:

- ``direct``: the ``sent`` terms (what a patch sends the class token through attention; the direct
  attribution);
- ``centred``: ``sent − centred``: removing a patch renormalises the class token's attention, so it moves
  the output by about ``a_j (v_j − o)``;
- ``decomposition``: ``sent + own + mlp``: also the patch's part of the class token's attention to
  itself and of its MLP;
- ``decomposition centred``: both.

    python experiments/stream_maps.py runs/fashion/<target>.safetensors ... --data fashion:other
"""

from __future__ import annotations

import numpy as np
import torch
from target_reference import map_study_arguments, with_reference

from explainvec.evaluation import metrics as m
from explainvec.evaluation.suite import of_class
from explainvec.models.contributions import STREAM_TERMS, captured_attention, mixed_terms, stream_terms

MAPS = {
    "direct": {"sent": 1},
    "centred": {"sent": 1, "centred": -1},
    "decomposition": {"sent": 1, "own": 1, "mlp": 1},
    "decomposition centred": {"sent": 1, "centred": -1, "own": 1, "mlp": 1},
}


def main() -> None:
    args = map_study_arguments(__doc__, images=16, budget=1024)
    scores: dict[str, list[float]] = {name: [] for name in MAPS}
    for path in args.targets:
        model, batch, reference = with_reference(path, args.data, args.images, args.budget)
        vit = model.vit
        with torch.no_grad(), captured_attention(vit) as captured:
            predicted = vit.forward_head(vit.forward_features(batch.images)).argmax(-1)
            line = []
            for name, weights in MAPS.items():
                mixes = [weights.get(t, 0) * vit.head.weight for _ in vit.blocks for t in STREAM_TERMS]
                maps = mixed_terms(vit, captured, mixes, stream_terms(vit, captured), vit.num_prefix_tokens)
                value = m.pearson(of_class(maps, predicted), of_class(reference, predicted)).mean()
                scores[name].append(float(value))
                line.append(f"{name} {float(value):+.3f}")
        print(path, " | ".join(line), flush=True)
    print("mean:", " | ".join(f"{name} {np.mean(v):+.3f}" for name, v in scores.items()))


if __name__ == "__main__":
    main()
