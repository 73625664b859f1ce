"""Image-folder datasets (``root/<class>/*.png|jpg``) with timm's preprocessing and optional masks.

What is accepted and how each image mode becomes RGB is documented in ``docs/data.md``.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from timm.data import create_transform
from torch.utils.data import Dataset
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, PILToTensor, Resize

from explainvec.data.preprocess import Preprocess
from explainvec.errors import ExplainvecError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
"""16-bit grey (``I`` is how older Pillow opens a 16-bit PNG): scaled to 8 bit by the full 0–65535 range."""
ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
"""Modes with transparency: composited on ``BACKGROUND`` (so are images with a ``transparency`` key)."""
PLAIN_MODES = {"RGB", "1", "L", "P", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
"""Modes Pillow converts to RGB directly (grey and palette replicated, CMYK by its naive formula)."""
SUPPORTED_MODES = PLAIN_MODES | ALPHA_MODES | SIXTEEN_BIT_MODES
BACKGROUND = (255, 255, 255)
"""Transparent pixels become white: what a browser or image viewer shows behind them."""
READ_ERRORS = (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError)


class DataError(ExplainvecError):
    """Input data that cannot be used as it is; the message names the file or folder."""


def unreadable(path: Path, error: Exception) -> DataError:
    """The error for an image file Pillow cannot open or decode."""
    reason = "not an image format Pillow knows" if isinstance(error, UnidentifiedImageError) else error
    return DataError(f"cannot read image {path}: {reason}")


def split_root(root: Path, split: str) -> tuple[Path, str | None]:
    """Where a split's class folders are: ``root/<split>`` when ``root/train`` exists, else ``root``.

    In the second case images are split by a hash of their relative path (80 % train, 10 % val,
    10 % test), so the split never changes when files are added elsewhere.
    """
    if (root / "train").is_dir():
        if not (root / split).is_dir():
            raise DataError(f"{root} has a train/ folder but no {split}/ folder")
        return root / split, None
    return root, split


def _bucket(relative: str) -> str:
    b = zlib.crc32(relative.encode("utf-8", "surrogateescape")) % 10  # names that are not UTF-8 too
    return "test" if b == 0 else "val" if b == 1 else "train"


def _visible(folder: Path) -> list[Path]:
    """Entries of ``folder`` whose names do not start with '.' (``.DS_Store``, ``.ipynb_checkpoints``)."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def class_folders(folder: Path) -> list[str]:
    """The class names under ``folder``: its visible subfolders, at least two.

    Non-image files beside them (a README, a labels file) are ignored; an image there is an error.
    """
    entries = _visible(folder)
    strays = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if strays:
        raise DataError(f"image {strays[0]} is not inside a class folder (expected {folder}/<class>/<image>)")
    names = [p.name for p in entries if p.is_dir()]
    if not names:
        raise DataError(f"{folder} has no class folders (expected {folder}/<class>/<image>)")
    if len(names) == 1:
        raise DataError(
            f"{folder} has a single class folder ({names[0]}); a classifier needs at least two classes"
        )
    return names


def class_images(folder: Path) -> list[Path]:
    """The image files of a class folder; anything else in it but hidden entries is an error."""
    entries = _visible(folder)
    for path in entries:
        if path.is_dir():
            raise DataError(
                f"{path} is a folder inside class folder {folder}; class folders hold only images"
            )
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(
                f"{path} is not an image file ({', '.join(sorted(IMAGE_SUFFIXES))}); move it out of the "
                "class folder"
            )
    if not entries:
        raise DataError(f"class folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return entries


def check_header(path: Path) -> None:
    """Raise DataError unless ``path`` opens as an image of a supported mode (reads the header only)."""
    try:
        with Image.open(path) as image:
            mode = image.mode
    except READ_ERRORS as error:
        raise unreadable(path, error) from error
    if mode not in SUPPORTED_MODES:
        raise DataError(f"image {path} has mode {mode}, which explainvec cannot convert to RGB")


def to_rgb(image: Image.Image, path: str | Path) -> Image.Image:
    """``image`` as 8-bit RGB: 16-bit grey scaled by its full range, transparency on ``BACKGROUND``."""
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise DataError(f"image {path} holds values outside 0–65535, not a 16-bit image")
        grey = Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")  # rounded
        if "transparency" not in image.info:
            return grey.convert("RGB")
        alpha = Image.fromarray(np.where(values == image.info["transparency"], 0, 255).astype(np.uint8), "L")
        image = Image.merge("LA", (grey, alpha))
    if image.mode not in SUPPORTED_MODES:
        raise DataError(f"image {path} has mode {image.mode}, which explainvec cannot convert to RGB")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        background = Image.new("RGBA", image.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def open_rgb(path: Path) -> Image.Image:
    """Open an image file as RGB (see ``to_rgb``), or raise DataError naming the file."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image, path)
    except DataError:
        raise
    except READ_ERRORS as error:
        raise unreadable(path, error) from error


class ImageFolderDataset(Dataset):
    """Images under ``root/<class>/``; items are ``(normalised image, label, mask)``.

    With ``masks``, each image ``root/<class>/<name>.<ext>`` has a mask ``masks/<class>/<name>.png``
    (non-zero = class evidence) that is resized and cropped like the image. Every file of the split
    (and its mask) is opened at construction, header only, so a bad file is reported before training.
    """

    def __init__(
        self, root: str | Path, split: str, *, preprocess: Preprocess, masks: str | Path | None = None
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"image folder {root} does not exist")
        folder, bucket = split_root(root, split)
        self.class_names = class_folders(folder)
        if bucket is None and split != "train" and self.class_names != class_folders(root / "train"):
            raise DataError(
                f"{folder} has classes {self.class_names}, {root / 'train'} has "
                f"{class_folders(root / 'train')}; every split needs the same class folders"
            )
        self.files: list[tuple[Path, int]] = []
        for label, name in enumerate(self.class_names):
            self.files += [
                (p, label)
                for p in class_images(folder / name)
                if bucket is None or _bucket(str(p.relative_to(root))) == bucket
            ]
        if not self.files:
            raise DataError(f"no images of split {split!r} under {root}")
        self.folder = folder
        self.preprocess = preprocess
        self.masks_root = Path(masks) if masks is not None else None
        self.has_masks = self.masks_root is not None
        for index, (path, _) in enumerate(self.files):
            check_header(path)
            if self.masks_root is not None:
                if not self.mask_path(index).is_file():
                    raise DataError(f"mask {self.mask_path(index)} for image {path} is missing")
                check_header(self.mask_path(index))
        self.transform = create_transform(**preprocess.timm_kwargs())
        scale = int(preprocess.image_size / preprocess.crop_pct)
        self.mask_transform = Compose(
            [Resize(scale, InterpolationMode.NEAREST), CenterCrop(preprocess.image_size), PILToTensor()]
        )

    def __len__(self) -> int:
        return len(self.files)

    def mask_path(self, index: int) -> Path:
        """Where the mask of image ``index`` is expected."""
        path, _ = self.files[index]
        assert self.masks_root is not None
        return self.masks_root / path.parent.name / (path.stem + ".png")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        path, label = self.files[index]
        image = self.transform(open_rgb(path))
        if self.masks_root is None:
            return image, label, torch.zeros(image.shape[1:])
        mask_file = self.mask_path(index)
        try:
            with Image.open(mask_file) as mask:
                mask_tensor = self.mask_transform(mask.convert("L"))[0] > 0
        except READ_ERRORS as error:
            raise DataError(f"cannot read mask {mask_file} of image {path}: {error}") from error
        return image, label, mask_tensor.float()
