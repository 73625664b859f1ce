import numpy as np
import pytest
import torch
from PIL import Image

from explainvec.data import DataError, ImageFolderDataset, Preprocess, SyntheticDataset, load_data

PRE = Preprocess(image_size=32)


def write_folder(root, masks_root=None, size=12):
    for split in ("train", "test"):
        data = SyntheticDataset("geo", split, size=size, preprocess=PRE, patch_size=8)
        for i in range(size):
            name = data.class_names[data.labels[i]]
            (root / split / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(data.pixels[i].permute(1, 2, 0).numpy()).save(
                root / split / name / f"{i:03d}.png"
            )
            if masks_root is not None:
                (masks_root / split / name).mkdir(parents=True, exist_ok=True)
                mask = (data.masks[i].numpy() * 255).astype(np.uint8)
                Image.fromarray(mask).save(masks_root / split / name / f"{i:03d}.png")


def test_png_round_trip_gives_the_same_tensors(tmp_path):
    write_folder(tmp_path / "data", tmp_path / "masks")
    original = SyntheticDataset("geo", "test", size=12, preprocess=PRE, patch_size=8)
    folder = ImageFolderDataset(tmp_path / "data", "test", preprocess=PRE, masks=tmp_path / "masks" / "test")
    # Files are read class by class; match them back to the generated index by file name.
    for (path, _), item in zip(folder.files, folder, strict=True):
        i = int(path.stem)
        image, folder_label, mask = item
        expected, expected_label, expected_mask = original[i]
        assert folder.class_names[folder_label] == original.class_names[expected_label]
        torch.testing.assert_close(image, expected, atol=1.5 / 255 / 0.5, rtol=0)
        assert torch.equal(mask, expected_mask)


def test_flat_folder_is_split_by_hash(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(40):
            Image.new("RGB", (10, 10), (i, 0, 0)).save(tmp_path / c / f"{i}.png")
    sizes = {s: len(ImageFolderDataset(tmp_path, s, preprocess=PRE)) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 80 and sizes["train"] > sizes["test"] > 0
    image, _, _ = load_data(str(tmp_path), "train", preprocess=PRE, patch_size=8)[0]
    assert image.shape == (3, 32, 32)


def test_corrupt_image_names_the_file(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "bad.png").write_bytes(b"not a png at all")
    data = ImageFolderDataset(tmp_path, "train", preprocess=PRE)
    with pytest.raises(DataError, match=r"bad\.png"):
        data[0]
    with pytest.raises(DataError, match="no test/ folder"):
        ImageFolderDataset(tmp_path, "test", preprocess=PRE)


def test_empty_class_folder_and_missing_folder_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        ImageFolderDataset(tmp_path, "train", preprocess=PRE)
    with pytest.raises(DataError, match="does not exist"):
        ImageFolderDataset(tmp_path / "nope", "train", preprocess=PRE)
