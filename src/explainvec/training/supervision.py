"""Explanation supervision: loss terms that make the head-on-patch-tokens map a Shapley decomposition.

- ``probability`` / ``logit``: the amortised (FastSHAP) objective on a frozen value model's outputs,
  ``P · mean_{S,c} (v_c(∅) + Σ_{j∈S} φ_{j,c} − v_c(S))²`` with K paired Shapley-kernel coalitions.
  By default each training item's K coalitions are drawn once and the frozen value model is evaluated
  on them once (a coalition bank, kept in memory by item index and reused every epoch); ``bank=False``
  draws fresh coalitions, and runs the value model, at every step.
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


Bank = dict[int, tuple[torch.Tensor, torch.Tensor]]
"""Item index → its coalitions ``[K + 2, P]`` (all, ∅, then the K sampled) and their values ``[K + 2, ·]``."""


class AmortisedGameLoss:
    """``alpha ·`` the amortised Shapley objective against a frozen value model (see module docstring).

    The value model sees (all, ∅) and the K sampled coalitions as (K + 2) / 2 complementary pairs, one
    packed sequence each (``pack_pairs=False``: one sequence per coalition, same values).

    ``bank=True`` (default): an item's coalitions are its epoch-0 draw, and the value model runs on them
    the first time the item is seen; coalitions and values (on the CPU) are then reused in every later
    epoch, so the value model is paid once per item instead of once per item and epoch. The values
    being cached, a step costs a plain step plus a ``[K, P] @ [P, ·]`` product per item. Draws depend on
    (seed, item) alone, so a run gives the same bank in any number of processes and after a resume;
    in a data-parallel run the processes share what they evaluated, so each item is evaluated once in
    all. Memory: ``(K + 2) ×`` the value's width floats per training item (``embedding``: the model
    width). ``bank=False`` draws fresh coalitions for every (epoch, item) and runs the value model at
    every step.
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
        bank: bool = True,
    ) -> None:
        self.value_model = value_model.eval().requires_grad_(False)
        self.output, self.num_coalitions, self.alpha, self.seed = output, num_coalitions, alpha, seed
        self.pack_pairs = pack_pairs
        self.bank: Bank | None = {} if bank else None

    def coalitions(self, index: int, epoch: int, players: int) -> torch.Tensor:
        """Item ``index``'s keep-masks ``[K + 2, P]`` in ``epoch``: all, ∅, then K paired kernel draws."""
        generator = item_generator(self.seed, 0 if self.bank is not None else epoch, index)
        sampled = sample_kernel_coalitions(1, players, self.num_coalitions, generator=generator)[0]
        ends = torch.stack([torch.ones(players, dtype=torch.bool), torch.zeros(players, dtype=torch.bool)])
        return torch.cat([ends, sampled])

    def evaluate(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The frozen value model's values ``[B, M, ·]`` of keep-masks ``[B, M, P]`` of ``images``."""
        self.value_model.to(images.device)
        return MaskedModelGame(self.value_model, images, self.output, pack_pairs=self.pack_pairs)(masks)

    def targets(
        self, images: torch.Tensor, indices: torch.Tensor, epoch: int, players: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Coalitions ``[B, K + 2, P]`` and their values for a batch: from the bank, filled as needed."""
        keys = [int(i) for i in indices]
        if self.bank is None:
            masks = torch.stack([self.coalitions(i, epoch, players) for i in keys]).to(images.device)
            return masks, self.evaluate(images, masks)
        missing = [n for n, i in enumerate(keys) if i not in self.bank]
        new: Bank = {}
        if missing:
            masks = torch.stack([self.coalitions(keys[n], 0, players) for n in missing])
            values = self.evaluate(images[missing], masks.to(images.device)).cpu()
            new = {keys[n]: (masks[j], values[j]) for j, n in enumerate(missing)}
        self.bank.update(_shared(new))
        masks, values = (torch.stack([self.bank[i][part] for i in keys]) for part in (0, 1))
        return masks.to(images.device), values.to(images.device)

    def __call__(
        self,
        model: VisionTransformer,
        images: torch.Tensor,
        indices: torch.Tensor,
        tokens: torch.Tensor,
        epoch: int = 0,
    ) -> torch.Tensor:
        p = num_patches(model)
        masks, values = self.targets(images, indices, epoch, p)
        full, empty, values = values[:, 0], values[:, 1], values[:, 2:]
        phi = efficient_normalisation(patch_attributions(model, tokens, self.output), full - empty)
        predicted = empty[:, None] + masks[:, 2:].to(phi.dtype) @ phi
        return self.alpha * p * (predicted - values).pow(2).mean()


def _shared(new: Bank) -> Bank:
    """``new`` bank entries of this process merged with every other process's (one collective per step,
    in a data-parallel run; every process calls it at every step)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return new
    gathered: list[Bank | None] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, new)
    return {i: entry for part in gathered for i, entry in (part or {}).items()}


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
