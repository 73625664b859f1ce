"""One way to name data on the command line: ``synthetic:<domain>`` or an image-folder path."""

from __future__ import annotations

from torch.utils.data import Dataset

from explainvec.data.folder import ImageFolderDataset
from explainvec.data.preprocess import Preprocess
from explainvec.data.synthetic import SyntheticDataset

SYNTHETIC_PREFIX = "synthetic:"
DEFAULT_SIZES = {"train": 2000, "val": 500, "test": 500}


def load_data(
    spec: str,
    split: str,
    *,
    preprocess: Preprocess,
    patch_size: int,
    size: int | None = None,
    seed: int = 0,
    masks: str | None = None,
) -> Dataset:
    """The ``split`` of the data named ``spec`` (``synthetic:<domain>`` or a folder), preprocessed.

    ``size`` only applies to synthetic data (default: 2000 train, 500 val, 500 test images).
    """
    if spec.startswith(SYNTHETIC_PREFIX):
        return SyntheticDataset(
            spec[len(SYNTHETIC_PREFIX) :],
            split,
            size=size or DEFAULT_SIZES[split],
            preprocess=preprocess,
            patch_size=patch_size,
            seed=seed,
        )
    return ImageFolderDataset(spec, split, preprocess=preprocess, masks=masks)
