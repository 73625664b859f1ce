"""Ways to explain, all behind one interface: ``(model, images, single-pass output) -> [B, P, C]``.

``ATTRIBUTORS`` maps a name to a factory, so the evaluation suite and the CLI select them by name:
``single_pass`` (the model's own map; on an unedited model this is λ = 0), ``kernelshap<N>`` (Kernel SHAP
with N evaluations), ``random``, ``rollout`` (attention rollout), ``direct_attribution`` (each patch's direct
contribution to the logits through attention, summed over blocks) and ``integrated_gradients`` (captum's
layer integrated gradients on the patch embedding). Model-level baselines (the oracle, a norm-matched
random vector) are other models explained by ``single_pass``; see :func:`random_vector_like`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from captum.attr import LayerIntegratedGradients

from explainvec.models.contributions import attention_weights, captured_attention, direct_logits
from explainvec.models.self_explaining import Explanation, SelfExplainingViT
from explainvec.shapley.kernel_shap import kernel_shap
from explainvec.shapley.model_games import MaskedModelGame
from explainvec.vectors.explainability_vector import ExplainabilityVector, block_of

Attributor = Callable[[SelfExplainingViT, torch.Tensor, Explanation], torch.Tensor]
"""``(model, images, single-pass output) -> attributions [B, P, C]``; the output is computed once and
shared, so ``single_pass`` costs nothing beyond the prediction."""


def single_pass(model: SelfExplainingViT, images: torch.Tensor, out: Explanation) -> torch.Tensor:
    """The model's own one-forward-pass map."""
    return out.attributions


def kernel_shap_attributor(budget: int, seed: int = 1) -> Attributor:
    """Kernel SHAP with ``budget`` evaluations of the model's own read-out game (coalitions drawn on CPU,
    so the same on every device; the game runs where the images are)."""

    def attribute(model: SelfExplainingViT, images: torch.Tensor, out: Explanation) -> torch.Tensor:
        game = MaskedModelGame(model.vit, images, model.readout)
        return kernel_shap(game, budget, generator=torch.Generator().manual_seed(seed)).values

    return attribute


def random_attributor(seed: int = 0) -> Attributor:
    """Standard normal noise: the floor every method must beat (drawn on CPU, so the same on every device)."""

    def attribute(model: SelfExplainingViT, images: torch.Tensor, out: Explanation) -> torch.Tensor:
        noise = torch.randn(out.attributions.shape, generator=torch.Generator().manual_seed(seed))
        return noise.to(images.device)

    return attribute


@torch.no_grad()
def attention_rollout(model: SelfExplainingViT, images: torch.Tensor, out: Explanation) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): the product over blocks of ``½(A + I)``, A averaged over
    heads and renormalised; the class token's row over patches. Class-agnostic, so every class shares it."""
    vit = model.vit
    with captured_attention(vit) as captured:
        vit.forward_features(images)
    rollout = None
    for block, qkv in zip(vit.blocks, captured["qkv"], strict=True):
        n = qkv.shape[1]
        weights = attention_weights(block, qkv)[0].mean(1)
        weights = 0.5 * (weights + torch.eye(n, device=weights.device))
        weights = weights / weights.sum(-1, keepdim=True)
        rollout = weights if rollout is None else weights @ rollout
    patches = rollout[:, 0, vit.num_prefix_tokens :]
    return patches[:, :, None].expand(-1, -1, out.logits.shape[-1]).clone()


@torch.no_grad()
def direct_attribution(model: SelfExplainingViT, images: torch.Tensor, out: Explanation) -> torch.Tensor:
    """Each patch's direct contribution to the logits: what it sends the class token through attention in
    every block, summed over blocks and read by the head
    (:func:`explainvec.models.contributions.direct_logits`). One forward pass, no training, any ViT: a
    map a user can have for free."""
    return direct_logits(model.vit, images)


def integrated_gradients(steps: int = 16) -> Attributor:
    """captum's ``LayerIntegratedGradients`` of each class logit at the patch-embedding output (from the
    all-zero, i.e. dataset-mean, image), summed over channels: one score per patch and class."""

    def attribute(model: SelfExplainingViT, images: torch.Tensor, out: Explanation) -> torch.Tensor:
        method = LayerIntegratedGradients(model.vit, model.vit.patch_embed)
        maps = []
        for c in range(out.logits.shape[-1]):
            target = torch.full((len(images),), c, dtype=torch.long, device=images.device)
            scores = method.attribute(images, torch.zeros_like(images), target=target, n_steps=steps)
            maps.append(scores.sum(-1).detach())
        return torch.stack(maps, dim=-1)

    return attribute


def attributor_cost(name: str, num_classes: int) -> int:
    """Model evaluations per image of a named attributor (backward passes of gradients not counted)."""
    if match := re.fullmatch(r"kernelshap(\d+)", name):
        return int(match.group(1))
    if name == "integrated_gradients":
        return 16 * num_classes
    return 1


def get_attributor(name: str) -> Attributor:
    """The attributor called ``name`` (``kernelshap<N>`` for any budget N)."""
    if match := re.fullmatch(r"kernelshap(\d+)", name):
        return kernel_shap_attributor(int(match.group(1)))
    if name not in ATTRIBUTORS:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(ATTRIBUTORS)}, kernelshap<N>")
    return ATTRIBUTORS[name]()


ATTRIBUTORS: dict[str, Callable[[], Attributor]] = {
    "single_pass": lambda: single_pass,
    "kernelshap150": lambda: kernel_shap_attributor(150),
    "random": random_attributor,
    "rollout": lambda: attention_rollout,
    "integrated_gradients": integrated_gradients,
    "direct_attribution": lambda: direct_attribution,
}
"""Attributors selectable by name."""


def random_vector_like(tau: ExplainabilityVector, seed: int = 0) -> ExplainabilityVector:
    """A control for τ: Gaussian directions with τ's norm in every block (``block_of``), same metadata."""
    generator = torch.Generator().manual_seed(seed)
    noise = {name: torch.randn(t.shape, generator=generator) for name, t in tau.tensors.items()}
    target, current = tau.block_norms(), ExplainabilityVector(noise, tau.meta).block_norms()
    tensors = {
        name: n * (target[block_of(name)] / max(current[block_of(name)], 1e-12)) for name, n in noise.items()
    }
    return ExplainabilityVector(
        tensors, tau.meta.model_copy(update={"control": f"norm-matched random, seed {seed}"})
    )
