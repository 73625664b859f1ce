"""A seeded, deterministic dataset drawn from one embedded domain, held in memory."""

from __future__ import annotations

import zlib

import numpy as np
import torch

from explainvec.data.domains import get_domain, render
from explainvec.data.in_memory import InMemoryImages
from explainvec.data.preprocess import Preprocess
from explainvec.data.scenes import render_scene

SPLITS = ("train", "val", "test")


class SyntheticDataset(InMemoryImages):
    """``size`` images of a named domain; items are ``(normalised image, label, evidence mask)``.

    Image ``i`` of a split depends only on ``(seed, domain, split, i)``: the same seed gives the same bytes.
    """

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
        key = [seed, zlib.crc32(domain.encode()), SPLITS.index(split)]
        draw = render_scene if self.domain.layout == "scene" else render
        drawn = [
            draw(self.domain, preprocess.image_size, patch_size, np.random.default_rng([*key, i]))
            for i in range(size)
        ]
        super().__init__(
            torch.from_numpy(np.stack([d[0] for d in drawn])).permute(0, 3, 1, 2),
            torch.tensor([d[2] for d in drawn], dtype=torch.long),
            torch.from_numpy(np.stack([d[1] for d in drawn])),
            list(self.domain.classes),
            preprocess,
        )
