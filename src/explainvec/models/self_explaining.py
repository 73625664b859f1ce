"""One forward pass, two outputs: the prediction and a per-patch, per-class Shapley attribution map."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from explainvec.models.adapter import adapted_patches
from explainvec.models.checkpoint import Checkpoint, load_checkpoint
from explainvec.models.masking import masked_tokens
from explainvec.models.vit import grid_size, image_size, num_patches
from explainvec.vocabulary import DEFAULT_READOUT, Readout, class_values


@dataclass
class Explanation:
    """What a self-explaining forward pass returns."""

    logits: torch.Tensor  # [B, C]
    attributions: torch.Tensor  # [B, P, C]: each class's column sums to v_c(all) − v_c(∅)
    grid: tuple[int, int]
    image_size: int
    class_names: list[str]

    @property
    def probabilities(self) -> torch.Tensor:
        return self.logits.softmax(-1)

    @property
    def predicted(self) -> torch.Tensor:
        """Predicted class index per image ``[B]``."""
        return self.logits.argmax(-1)

    def for_class(self, class_index: int | torch.Tensor | None = None) -> torch.Tensor:
        """Attributions ``[B, P]`` of one class (an int, one index per image, or ``None`` = predicted)."""
        index = self.predicted if class_index is None else torch.as_tensor(class_index)
        index = index.expand(len(self.logits)) if index.dim() == 0 else index
        return self.attributions.gather(
            2, index.to(self.attributions.device)[:, None, None].expand(-1, self.attributions.shape[1], 1)
        )[..., 0]

    def heatmap(self, class_index: int | torch.Tensor | None = None, *, smooth: bool = False) -> torch.Tensor:
        """Attributions of a class as ``[B, H, W]`` images: the patch grid upsampled to the input size, one
        block per patch, or ``smooth`` (bilinear, as grad-cam's overlays)."""
        maps = self.for_class(class_index).reshape(-1, 1, *self.grid)
        size = (self.image_size, self.image_size)
        if smooth:
            return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)[:, 0]
        return F.interpolate(maps, size=size, mode="nearest")[:, 0]


def patch_readout(model: VisionTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """The model's own head applied to every final-norm patch token (through the explanation adapter
    when the model has one): ``[B, P, C]``."""
    return model.head(model.fc_norm(adapted_patches(model, tokens)))


def efficient_normalisation(raw: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """``raw − mean_j raw + total / P``: per class, the attributions then sum exactly to ``total``."""
    return raw - raw.mean(dim=1, keepdim=True) + total[:, None, :] / raw.shape[1]


class SelfExplainingViT(nn.Module):
    """Wraps a timm ViT: ``out = model(images)`` gives ``out.logits`` and ``out.attributions``.

    The map is the model's own classifier head on its final patch tokens, efficiency-normalised so that
    each class's attributions sum to ``v_c(all) − v_c(∅)``, with ``v`` the class probability
    (``readout="probability"``) or logit. ``v(∅)`` does not depend on the image under attention masking
    (only the class token remains); it is computed once and cached until the weights change.
    Works on any prediction-only checkpoint too: that is the λ = 0 baseline.
    """

    def __init__(
        self, vit: VisionTransformer, class_names: list[str], readout: Readout = DEFAULT_READOUT
    ) -> None:
        super().__init__()
        if readout not in ("probability", "logit"):
            raise ValueError(f"readout must be 'probability' or 'logit', got {readout!r}")
        self.vit, self.class_names, self.readout = vit, class_names, readout
        self._empty: tuple[tuple, torch.Tensor] | None = None

    @property
    def num_patches(self) -> int:
        return num_patches(self.vit)

    def _weights_version(self) -> tuple:
        return tuple((p.data_ptr(), p._version) for p in self.vit.parameters())

    def values(self, logits: torch.Tensor) -> torch.Tensor:
        """The game's value from logits: probabilities or the logits themselves."""
        return class_values(logits, self.readout)

    def empty_value(self) -> torch.Tensor:
        """``v(∅)`` ``[C]``: the output with every patch masked out (cached per weights)."""
        version = self._weights_version()
        if self._empty is None or self._empty[0] != version:
            reference = next(self.vit.parameters())
            size = image_size(self.vit)
            images = torch.zeros(1, 3, size, size, device=reference.device, dtype=reference.dtype)
            keep = torch.zeros(1, self.num_patches, dtype=torch.bool, device=reference.device)
            with torch.no_grad():
                logits = self.vit.forward_head(masked_tokens(self.vit, images, keep))
            self._empty = (version, self.values(logits)[0])
        return self._empty[1]

    def explain_tokens(self, tokens: torch.Tensor) -> Explanation:
        """Prediction and attributions from final-norm tokens ``[B, T, D]`` of one forward pass."""
        logits = self.vit.forward_head(tokens)
        total = self.values(logits) - self.empty_value()
        attributions = efficient_normalisation(patch_readout(self.vit, tokens), total)
        return Explanation(logits, attributions, grid_size(self.vit), image_size(self.vit), self.class_names)

    def forward(self, images: torch.Tensor) -> Explanation:
        return self.explain_tokens(masked_tokens(self.vit, images))

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> SelfExplainingViT:
        """Wrap a loaded checkpoint with its read-out (:func:`readout_of`)."""
        return cls(checkpoint.model, checkpoint.meta.class_names, readout_of(checkpoint))


def readout_of(checkpoint: Checkpoint) -> Readout:
    """The one read-out of ``checkpoint``'s map: the one its explanation training or vector recorded, else
    (a prediction-only model) the logit read-out. Loading, explaining, the λ search and the evaluation
    all ask this function, so the map a user sees is the map the report scored."""
    return checkpoint.meta.explanation.readout or DEFAULT_READOUT


def load(path: str | Path, device: str = "cpu") -> SelfExplainingViT:
    """Load any explainvec checkpoint as a self-explaining model: ``explainvec.load("m.safetensors")``."""
    return SelfExplainingViT.from_checkpoint(load_checkpoint(path, device=device)).eval()
