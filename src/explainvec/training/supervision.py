"""Explanation supervision: loss terms that make the head-on-patch-tokens map a Shapley decomposition.

- ``probability`` / ``logit``: the amortised (FastSHAP) objective on a frozen value model's outputs,
  ``P · mean_{S,c} (v_c(∅) + Σ_{j∈S} φ_{j,c} − v_c(S))²`` with K paired Shapley-kernel coalitions.
- ``embedding``: the head-agnostic game; the value is the value model's final-norm class token and
  ``φ_j`` are the efficiency-normalised patch tokens themselves, so any linear head reads Shapley
  values of its logits from them.
- ``LabelRegressionLoss``: regression on precomputed Kernel SHAP labels.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer

from explainvec.models.adapter import adapted_patches
from explainvec.models.self_explaining import efficient_normalisation, patch_readout
from explainvec.models.vit import num_patches
from explainvec.shapley.model_games import MaskedModelGame
from explainvec.shapley.sampling import sample_kernel_coalitions
from explainvec.training.seeding import item_generator
from explainvec.vocabulary import GameOutput


def patch_attributions(model: VisionTransformer, tokens: torch.Tensor, output: GameOutput) -> torch.Tensor:
    """Un-normalised patch scores ``[B, P, C|D]``: the head on patch tokens, or the tokens (embedding)."""
    if output == "embedding":
        return adapted_patches(model, tokens)
    return patch_readout(model, tokens)


class AmortisedGameLoss:
    """``alpha ·`` the amortised Shapley objective against a frozen value model (see module docstring).

    The value model sees (all, ∅) and the K sampled coalitions as (K + 2) / 2 complementary pairs, one
    packed sequence each (``pack_pairs=False``: one sequence per coalition, same values).
    """

    def __init__(
        self,
        value_model: VisionTransformer,
        *,
        output: GameOutput = "probability",
        num_coalitions: int = 16,
        alpha: float = 1.0,
        seed: int = 0,
        pack_pairs: bool = True,
    ) -> None:
        self.value_model = value_model.eval().requires_grad_(False)
        self.output, self.num_coalitions, self.alpha, self.seed = output, num_coalitions, alpha, seed
        self.pack_pairs = pack_pairs

    def __call__(
        self,
        model: VisionTransformer,
        images: torch.Tensor,
        indices: torch.Tensor,
        tokens: torch.Tensor,
        epoch: int = 0,
    ) -> torch.Tensor:
        b, p = len(images), num_patches(model)
        self.value_model.to(images.device)
        draws = (item_generator(self.seed, epoch, int(i)) for i in indices)
        sampled = torch.cat([sample_kernel_coalitions(1, p, self.num_coalitions, generator=g) for g in draws])
        ends = torch.stack([torch.ones(b, p, dtype=torch.bool), torch.zeros(b, p, dtype=torch.bool)], 1)
        masks = torch.cat([ends, sampled], dim=1).to(images.device)
        values = MaskedModelGame(self.value_model, images, self.output, pack_pairs=self.pack_pairs)(masks)
        full, empty, values = values[:, 0], values[:, 1], values[:, 2:]
        phi = efficient_normalisation(patch_attributions(model, tokens, self.output), full - empty)
        predicted = empty[:, None] + masks[:, 2:].to(phi.dtype) @ phi
        return self.alpha * p * (predicted - values).pow(2).mean()


class LabelRegressionLoss:
    """``alpha · mean (φ − φ_label)²`` against Kernel SHAP labels ``[N, P, C]`` of the training items."""

    def __init__(self, labels: torch.Tensor, *, alpha: float = 1.0) -> None:
        self.labels, self.alpha = labels, alpha

    def __call__(
        self,
        model: VisionTransformer,
        images: torch.Tensor,
        indices: torch.Tensor,
        tokens: torch.Tensor,
        epoch: int = 0,
    ) -> torch.Tensor:
        target = self.labels[indices].to(tokens.device)
        phi = efficient_normalisation(patch_readout(model, tokens), target.sum(dim=1))
        return self.alpha * (phi - target).pow(2).mean()
