"""Image-folder datasets (``root/<class>/*.png|jpg``) with timm's preprocessing and optional masks."""

from __future__ import annotations

import zlib
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from timm.data import create_transform
from torch.utils.data import Dataset
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, PILToTensor, Resize

from explainvec.data.preprocess import Preprocess

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


class DataError(ValueError):
    """Input data that cannot be used as it is; the message names the file or folder."""


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
    b = zlib.crc32(relative.encode()) % 10
    return "test" if b == 0 else "val" if b == 1 else "train"


def open_rgb(path: Path) -> Image.Image:
    """Open an image file as RGB, or raise DataError naming the file."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"cannot read image {path}: {error}") from error


class ImageFolderDataset(Dataset):
    """Images under ``root/<class>/``; items are ``(normalised image, label, mask)``.

    With ``masks``, each image ``root/<class>/<name>.<ext>`` has a mask ``masks/<class>/<name>.png``
    (non-zero = class evidence) that is resized and cropped like the image.
    """

    def __init__(
        self, root: str | Path, split: str, *, preprocess: Preprocess, masks: str | Path | None = None
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"image folder {root} does not exist")
        folder, bucket = split_root(root, split)
        self.class_names = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not self.class_names:
            raise DataError(f"{folder} has no class folders (expected {folder}/<class>/<image>)")
        self.files: list[tuple[Path, int]] = []
        for label, name in enumerate(self.class_names):
            found = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataError(f"class folder {folder / name} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            self.files += [
                (p, label) for p in found if bucket is None or _bucket(str(p.relative_to(root))) == bucket
            ]
        if not self.files:
            raise DataError(f"no images of split {split!r} under {root}")
        self.folder = folder
        self.preprocess = preprocess
        self.masks_root = Path(masks) if masks is not None else None
        self.has_masks = self.masks_root is not None
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
        if not mask_file.is_file():
            raise DataError(f"mask {mask_file} for image {path} is missing")
        with Image.open(mask_file) as mask:
            mask_tensor = self.mask_transform(mask.convert("L"))[0] > 0
        return image, label, mask_tensor.float()
