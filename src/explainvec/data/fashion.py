"""Fashion-MNIST: 70 000 real 28×28 grey photos of clothing in 10 classes, read from the four idx files.

Named on the command line as ``fashion:<subset>`` or ``fashion:<subset>@<folder>``. The folder holds the
standard files (``train-images-idx3-ubyte`` …, plain or ``.gz``): Debian's ``dataset-fashion-mnist``
package puts them in ``/usr/share/datasets/fashion-mnist``, torchvision in ``<root>/FashionMNIST/raw``
(either folder, or the torchvision root, may be named). Without a folder, ``$EXPLAINVEC_FASHION_MNIST``
or the Debian folder is read. Splits: ``train`` and ``val`` (a fixed 10 % of the training file) and
``test`` (the test file), each in a fixed shuffled order, so the first ``size`` images are a sample of
every class; ``seed`` does not change them. The evidence mask is the garment's silhouette (pixels brighter
than ``SILHOUETTE``): the photos are on a black background.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from explainvec.data.folder import DataError
from explainvec.data.idx import read_idx
from explainvec.data.in_memory import InMemoryImages
from explainvec.data.preprocess import Preprocess

PREFIX = "fashion:"
DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")
FOLDER_VARIABLE = "EXPLAINVEC_FASHION_MNIST"
CLASSES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
SUBSETS: dict[str, tuple[int, ...]] = {
    "all": tuple(range(10)),
    "tops": (0, 2, 3, 4, 6),
    "other": (1, 5, 7, 8, 9),
    "shoes": (5, 7, 9),
}
"""Class subsets: ``tops`` and ``other`` split the ten classes in two (a source and a related target);
``all`` is for pretraining."""
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
VAL_SHARE = 0.1
SILHOUETTE = 16
SPLITS = ("train", "val", "test")


def parse_spec(spec: str) -> tuple[str, Path]:
    """``fashion:<subset>[@<folder>]`` → (subset, folder holding the idx files)."""
    folder = spec[len(PREFIX) :].partition("@")[2]
    subset = _subset(spec)
    root = Path(folder) if folder else Path(os.environ.get(FOLDER_VARIABLE) or DEBIAN_FOLDER)
    return subset, find_files(root)


def find_files(root: Path) -> Path:
    """The folder under ``root`` (itself, ``raw/`` or ``FashionMNIST/raw/``) that holds the idx files."""
    for folder in (root, root / "raw", root / "FashionMNIST" / "raw"):
        if all(_file(folder, name) for pair in FILES.values() for name in pair):
            return folder
    raise DataError(
        f"no Fashion-MNIST idx files in {root} (expected {FILES['train'][0]}[.gz] and the three others; "
        "install Debian's dataset-fashion-mnist package or name a torchvision FashionMNIST/raw folder)"
    )


def _file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _subset(spec: str) -> str:
    subset = spec[len(PREFIX) :].partition("@")[0]
    if subset not in SUBSETS:
        raise DataError(f"unknown Fashion-MNIST subset {subset!r} in {spec!r}; known: {', '.join(SUBSETS)}")
    return subset


def class_names(spec: str) -> list[str]:
    """The class names of ``spec``'s subset, in label order."""
    return [CLASSES[c] for c in SUBSETS[_subset(spec)]]


@functools.lru_cache(maxsize=4)
def _read(folder: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    images_name, labels_name = FILES[part]
    images, labels = read_idx(_file(folder, images_name)), read_idx(_file(folder, labels_name))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: {images_name} {images.shape} does not match {labels_name} {labels.shape}")
    if labels.max(initial=0) >= len(CLASSES):
        raise DataError(f"{folder}: {labels_name} holds label {labels.max()}, Fashion-MNIST has 10 classes")
    return images, labels


def split_indices(count: int, split: str) -> np.ndarray:
    """Indices of ``split`` into its idx file of ``count`` images, in the fixed shuffled order."""
    order = np.random.default_rng(0).permutation(count)
    if split == "test":
        return order
    val = round(VAL_SHARE * count)
    return order[:val] if split == "val" else order[val:]


class FashionMNIST(InMemoryImages):
    """The ``split`` of the subset named by ``spec``: the first ``size`` images (all when ``None``) of the
    split's fixed order that belong to the subset, labelled ``0 … k−1`` in the subset's class order."""

    def __init__(self, spec: str, split: str, *, preprocess: Preprocess, size: int | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        subset, folder = parse_spec(spec)
        images, labels = _read(folder, "test" if split == "test" else "train")
        classes = SUBSETS[subset]
        index = split_indices(len(labels), split)
        index = index[np.isin(labels[index], classes)][:size]
        relabel = np.full(len(CLASSES), -1)
        relabel[list(classes)] = np.arange(len(classes))
        grey = torch.from_numpy(images[index].copy())[:, None]
        masks = grey >= SILHOUETTE
        side = preprocess.image_size
        if grey.shape[-1] != side:
            grey = F.interpolate(grey.float(), size=(side, side), mode="bilinear", antialias=True)
            grey = grey.round().clamp(0, 255).to(torch.uint8)
            masks = F.interpolate(masks.float(), size=(side, side), mode="nearest") > 0.5
        super().__init__(
            grey.expand(-1, 3, -1, -1),
            torch.from_numpy(relabel[labels[index]]).long(),
            masks[:, 0],
            [CLASSES[c] for c in classes],
            preprocess,
        )
