"""One way to name data on the command line: ``synthetic:<domain>``, ``fashion:<subset>[@<folder>]`` or an
image-folder path."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from explainvec.data import fashion
from explainvec.data.domains import get_domain
from explainvec.data.folder import DataError, ImageFolderDataset, class_folders, split_root
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
    """The ``split`` of the data named ``spec`` (``synthetic:<domain>``, ``fashion:<subset>`` or a folder),
    preprocessed.

    ``size``: synthetic data draw that many images (default: 2000 train, 500 val, 500 test); Fashion-MNIST
    takes the first ``size`` of the split (all by default); a folder is read whole.
    """
    if spec.startswith(fashion.PREFIX):
        return fashion.FashionMNIST(spec, split, preprocess=preprocess, size=size)
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


def data_class_names(spec: str) -> list[str]:
    """The class names of the data named ``spec``, in label order, without reading any image."""
    if spec.startswith(SYNTHETIC_PREFIX):
        return list(get_domain(spec[len(SYNTHETIC_PREFIX) :]).classes)
    if spec.startswith(fashion.PREFIX):
        return fashion.class_names(spec)
    root = Path(spec)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    return class_folders(split_root(root, "train")[0])
