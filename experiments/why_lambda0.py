"""Why the head on an ordinary ViT's patch tokens is anti-correlated with its Shapley values: Pearson
(predicted class) of the head on the patch tokens entering every block, on the final tokens (λ = 0), and
of the attention shares each patch sends the class token (last block only, every block), against
Kernel SHAP of the model's logit game.

    python experiments/why_lambda0.py runs/studies/<target>.safetensors --data fashion:other
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from explainvec.evaluation import metrics as m
from explainvec.evaluation.evaluate import suite_batch
from explainvec.evaluation.suite import SuiteConfig, of_class, reference_values
from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.contributions import captured_attention, linearised_contributions
from explainvec.models.self_explaining import SelfExplainingViT


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("target", help="a prediction-only checkpoint")
    parser.add_argument("--data", required=True)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--budget", type=int, default=1024)
    args = parser.parse_args()
    torch.set_num_threads(1)
    target = load_checkpoint(args.target)
    vit = target.model.eval()
    batch = suite_batch(target, args.data, args.images, None, target)
    model = SelfExplainingViT(vit, target.meta.class_names, "logit").eval()
    config = SuiteConfig(reference_budget=args.budget, exact_reference=False)
    reference = reference_values(model, batch, config).values
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
