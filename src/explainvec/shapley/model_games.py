"""Value functions of real models: ``v(S)`` for patch coalitions, by attention masking or pixel filling.

These are the one implementation of "the model on a partial image" that training, Kernel SHAP,
insertion/deletion and the demo all use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

from explainvec.models.masking import masked_prefix_tokens
from explainvec.models.vit import grid_size, num_patches
from explainvec.vocabulary import GameOutput, Readout, class_values


def tokens_to_values(model: VisionTransformer, tokens: torch.Tensor, output: GameOutput) -> torch.Tensor:
    """Values ``[N, C]`` (or ``[N, D]`` for ``embedding``) from final-norm tokens ``[N, T, D]`` (the prefix
    tokens suffice: both read the class token)."""
    if output == "embedding":
        return tokens[:, 0]
    logits = model.forward_head(tokens)
    return class_values(logits, output)


class MaskedModelGame:
    """``v(S)`` for a batch of images: removed patches are masked out as attention keys in every block.

    ``output`` is class probabilities (default), logits, or the final-norm class-token embedding. Masks
    that come in complementary pairs (paired sampling; (∅, all)) run one packed sequence per pair, with
    the same values; ``pack_pairs=False`` runs one sequence per coalition.
    """

    def __init__(
        self,
        model: VisionTransformer,
        images: torch.Tensor,
        output: GameOutput = "probability",
        *,
        pack_pairs: bool = True,
    ) -> None:
        self.model, self.images, self.output, self.pack_pairs = model, images, output, pack_pairs
        self.num_players = num_patches(model)
        self.num_inputs = len(images)

    @torch.no_grad()
    def __call__(self, masks: torch.Tensor) -> torch.Tensor:
        b, m, _ = masks.shape
        masks = masks.to(self.images.device)
        tokens = masked_prefix_tokens(self.model, self.images, masks, pack_pairs=self.pack_pairs)
        return tokens_to_values(self.model, tokens, self.output).reshape(b, m, -1)


class PixelMaskedGame:
    """``v(S)`` with removed patches replaced in pixel space: by ``fill`` (default 0 = the normalised
    dataset mean) or, with ``blur=True``, by a heavily blurred copy of the image. For any classifier."""

    def __init__(
        self,
        model: torch.nn.Module,
        images: torch.Tensor,
        grid: tuple[int, int],
        output: Readout = "probability",
        fill: float = 0.0,
        blur: bool = False,
    ) -> None:
        self.model, self.images, self.grid, self.output = model, images, grid, output
        self.num_players = grid[0] * grid[1]
        self.num_inputs = len(images)
        if blur:
            h, w = images.shape[-2:]
            small = F.interpolate(images, size=grid, mode="area")
            self.background = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        else:
            self.background = torch.full_like(images, fill)

    @classmethod
    def for_vit(cls, model: VisionTransformer, images: torch.Tensor, **kwargs) -> PixelMaskedGame:
        """The pixel game of a timm ViT on its own patch grid."""
        return cls(model, images, grid_size(model), **kwargs)

    @torch.no_grad()
    def __call__(self, masks: torch.Tensor) -> torch.Tensor:
        b, m, _ = masks.shape
        h, w = self.images.shape[-2:]
        keep = masks.to(self.images.device).reshape(b, m, 1, *self.grid).float()
        keep = F.interpolate(keep.reshape(b * m, 1, *self.grid), size=(h, w), mode="nearest")
        keep = keep.reshape(b, m, 1, h, w)
        mixed = self.images[:, None] * keep + self.background[:, None] * (1 - keep)
        logits = self.model(mixed.reshape(b * m, *self.images.shape[1:]))
        values = class_values(logits, self.output)
        return values.reshape(b, m, -1)
