"""Why the head on an ordinary ViT's patch tokens is anti-correlated with its Shapley values: Pearson
(predicted class) of the head on the patch tokens entering every block, on the final tokens (λ = 0), and
of the attention shares each patch sends the class token (last block only, every block), against
Kernel SHAP of the model's logit game.

    python experiments/why_lambda0.py runs/studies/<target>.safetensors --data fashion:other
"""

from __future__ import annotations

import numpy as np
import torch
from target_reference import map_study_arguments, with_reference

from explainvec.evaluation import metrics as m
from explainvec.evaluation.suite import of_class
from explainvec.models.contributions import captured_attention, linearised_contributions


def main() -> None:
    args = map_study_arguments(__doc__, images=24, budget=1024, several=False)
    model, batch, reference = with_reference(args.target, args.data, args.images, args.budget)
    vit = model.vit
    entering: dict[int, torch.Tensor] = {}
    hooks = [
        b.register_forward_pre_hook(lambda mod, a, i=i: entering.__setitem__(i, a[0]))
        for i, b in enumerate(vit.blocks)
    ]
    with torch.no_grad(), captured_attention(vit) as captured:
        final = vit.forward_features(batch.images)
        predicted = vit.forward_head(final).argmax(-1)
    for hook in hooks:
        hook.remove()
    shares = linearised_contributions(vit, captured)[:, vit.num_prefix_tokens :]
    truth = of_class(reference, predicted)

    def pearson(maps: torch.Tensor) -> float:
        return float(np.mean(m.pearson(of_class(maps.detach(), predicted), truth).numpy()))

    def head_on(tokens: torch.Tensor) -> torch.Tensor:
        return vit.head(vit.norm(tokens))[:, vit.num_prefix_tokens :]

    for i in range(len(vit.blocks)):
        print(f"head on the patch tokens entering block {i}: {pearson(head_on(entering[i])):+.3f}")
    print(
        f"head on the final patch tokens (λ = 0): {pearson(vit.head(final)[:, vit.num_prefix_tokens :]):+.3f}"
    )
    print(f"last block's attention shares: {pearson(shares[:, :, -1] @ vit.head.weight.T):+.3f}")
    print(f"every block's attention shares: {pearson(shares.sum(2) @ vit.head.weight.T):+.3f}")


if __name__ == "__main__":
    main()
