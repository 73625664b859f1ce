"""A seeded, deterministic dataset drawn from one embedded domain, held in memory."""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch.utils.data import Dataset

from explainvec.data.domains import get_domain, render
from explainvec.data.preprocess import Preprocess

SPLITS = ("train", "val", "test")


class SyntheticDataset(Dataset):
    """``size`` images of a named domain; items are ``(normalised image, label, evidence mask)``.

    Image ``i`` of a split depends only on ``(seed, domain, split, i)``: the same seed gives the same bytes.
    """

    has_masks = True

    def __init__(
        self,
        domain: str,
        split: str,
        *,
        size: int,
        preprocess: Preprocess,
        patch_size: int,
        seed: int = 0,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if preprocess.image_size % patch_size:
            raise ValueError(
                f"image size {preprocess.image_size} is not a multiple of patch size {patch_size}"
            )
        self.domain = get_domain(domain)
        self.class_names = list(self.domain.classes)
        self.preprocess = preprocess
        key = [seed, zlib.crc32(domain.encode()), SPLITS.index(split)]
        drawn = [
            render(self.domain, preprocess.image_size, patch_size, np.random.default_rng([*key, i]))
            for i in range(size)
        ]
        self.pixels = torch.from_numpy(np.stack([d[0] for d in drawn])).permute(0, 3, 1, 2).contiguous()
        self.masks = torch.from_numpy(np.stack([d[1] for d in drawn]))
        self.labels = torch.tensor([d[2] for d in drawn], dtype=torch.long)
        self._mean = torch.tensor(preprocess.mean).view(3, 1, 1)
        self._std = torch.tensor(preprocess.std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        image = (self.pixels[index].float() / 255 - self._mean) / self._std
        return image, int(self.labels[index]), self.masks[index].float()
