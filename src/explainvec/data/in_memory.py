"""Images held in memory as uint8 tensors, normalised on access: the base of the embedded datasets."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from explainvec.data.preprocess import Preprocess


class InMemoryImages(Dataset):
    """Items ``(normalised image, label, evidence mask)`` from ``pixels [N, 3, H, W]`` uint8, ``labels [N]``
    and ``masks [N, H, W]`` bool, normalised with ``preprocess``'s mean and std."""

    has_masks = True

    def __init__(
        self,
        pixels: torch.Tensor,
        labels: torch.Tensor,
        masks: torch.Tensor,
        class_names: list[str],
        preprocess: Preprocess,
    ) -> None:
        self.pixels, self.labels, self.masks = pixels.contiguous(), labels, masks
        self.class_names = class_names
        self.preprocess = preprocess
        self._mean = torch.tensor(preprocess.mean).view(3, 1, 1)
        self._std = torch.tensor(preprocess.std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        image = (self.pixels[index].float() / 255 - self._mean) / self._std
        return image, int(self.labels[index]), self.masks[index].float()
