import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import create_transform

from explainvec.data import DataError, ImageFolderDataset, Preprocess, SyntheticDataset, load_data
from explainvec.data.folder import to_rgb

PRE = Preprocess(image_size=32)
TRANSFORM = create_transform(**PRE.timm_kwargs())
ONE_LEVEL = 1 / 255 / 0.5  # one 8-bit level after normalisation with std 0.5


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


def two_classes(root, images: dict[str, Image.Image]):
    """``root/train/a/<name>`` for each image and one plain image in ``root/train/b``."""
    for folder in ("a", "b"):
        (root / "train" / folder).mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        image.save(root / "train" / "a" / name)
    Image.new("RGB", (32, 32)).save(root / "train" / "b" / "plain.png")


def tensors_of(root) -> dict[str, torch.Tensor]:
    """The preprocessed images of ``root/train/a``, by file name."""
    data = ImageFolderDataset(root, "train", preprocess=PRE)
    return {path.name: data[i][0] for i, (path, label) in enumerate(data.files) if label == 0}


def expected(pixels: np.ndarray) -> torch.Tensor:
    """What an 8-bit RGB array ``[H, W, 3]`` becomes."""
    return TRANSFORM(Image.fromarray(np.asarray(pixels, dtype=np.uint8), "RGB"))


def one_line(error: pytest.ExceptionInfo, name: str) -> str:
    message = str(error.value)
    assert name in message and "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.png", b""),
        ("words.png", b"these are words, not pixels\n"),
        ("noise.jpg", bytes(range(256)) * 4),
    ],
)
def test_unreadable_files_are_reported_at_construction(tmp_path, name, content):
    two_classes(tmp_path, {"good.png": Image.new("RGB", (32, 32))})
    (tmp_path / "train" / "a" / name).write_bytes(content)
    with pytest.raises(DataError) as error:
        ImageFolderDataset(tmp_path, "train", preprocess=PRE)
    assert one_line(error, name).startswith("cannot read image")


def test_truncated_image_is_reported_when_read(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    two_classes(tmp_path, {"whole.png": Image.fromarray(noise)})
    whole = (tmp_path / "train" / "a" / "whole.png").read_bytes()
    (tmp_path / "train" / "a" / "cut.png").write_bytes(whole[: len(whole) // 2])
    data = ImageFolderDataset(tmp_path, "train", preprocess=PRE)  # its header is intact
    names = [path.name for path, _ in data.files]
    with pytest.raises(DataError) as error:
        data[names.index("cut.png")]
    assert "truncated" in one_line(error, "cut.png")
    assert torch.equal(data[names.index("whole.png")][0], expected(noise))


def test_grey_and_palette_images_are_replicated_to_rgb(tmp_path):
    grey = (np.arange(32 * 32).reshape(32, 32) % 251).astype(np.uint8)
    colours = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    palette = Image.fromarray(colours).quantize(16)
    two_classes(
        tmp_path,
        {"grey.png": Image.fromarray(grey), "palette.png": palette, "bits.png": Image.fromarray(grey > 100)},
    )
    t = tensors_of(tmp_path)
    assert torch.equal(t["grey.png"], expected(np.repeat(grey[..., None], 3, axis=2)))
    looked_up = np.asarray(palette.getpalette(), dtype=np.uint8).reshape(-1, 3)[np.asarray(palette)]
    assert torch.equal(t["palette.png"], expected(looked_up))
    assert torch.equal(t["bits.png"], expected(np.repeat((grey[..., None] > 100) * 255, 3, axis=2)))


def test_transparent_images_are_composited_on_white(tmp_path):
    alpha = np.zeros((32, 32), dtype=np.uint8)
    alpha[:, 16:] = 255
    alpha[:8] = 128
    colour = np.zeros((32, 32, 3), dtype=np.uint8)
    colour[...] = (200, 10, 10)
    colour[:, :16] = (0, 0, 255)  # hidden under alpha 0: must not show
    rgba = Image.fromarray(np.dstack([colour, alpha]), "RGBA")
    la = Image.fromarray(np.dstack([colour[..., 0], alpha]), "LA")
    palette = Image.new("P", (32, 32), 0)
    palette.putpalette([0, 0, 255, 200, 10, 10])
    palette.paste(1, (16, 0, 32, 32))
    palette.info["transparency"] = 0
    two_classes(tmp_path, {"rgba.png": rgba, "la.png": la, "palette.png": palette})
    t = tensors_of(tmp_path)
    a = alpha[..., None] / 255.0
    white_behind = np.rint(colour * a + 255 * (1 - a))
    torch.testing.assert_close(t["rgba.png"], expected(white_behind), atol=ONE_LEVEL * 1.01, rtol=0)
    grey = np.repeat(np.rint(colour[..., :1] * a + 255 * (1 - a)), 3, axis=2)
    torch.testing.assert_close(t["la.png"], expected(grey), atol=ONE_LEVEL * 1.01, rtol=0)
    keyed = np.full((32, 32, 3), 255)
    keyed[:, 16:] = (200, 10, 10)
    assert torch.equal(t["palette.png"], expected(keyed))


def test_sixteen_bit_grey_is_scaled_by_its_full_range(tmp_path):
    sixteen = np.linspace(0, 65535, 32 * 32).round().astype(np.uint16).reshape(32, 32)
    eight = np.rint(sixteen / 65535 * 255).astype(np.uint8)
    (tmp_path / "16").mkdir()
    Image.fromarray(sixteen).save(tmp_path / "16" / "gradient.png")
    with Image.open(tmp_path / "16" / "gradient.png") as image:
        assert image.mode == "I;16"
        clipped = TRANSFORM(image.convert("RGB"))  # Pillow's own conversion clips at 255
    two_classes(
        tmp_path,
        {"sixteen.png": Image.open(tmp_path / "16" / "gradient.png"), "eight.png": Image.fromarray(eight)},
    )
    t = tensors_of(tmp_path)
    torch.testing.assert_close(t["sixteen.png"], t["eight.png"], atol=ONE_LEVEL * 1.01, rtol=0)
    assert (clipped - t["eight.png"]).abs().max() > 1  # the test tells the two conversions apart
    # Pillow < 10 opens a 16-bit PNG in mode I; values beyond 16 bits are refused.
    from_i = to_rgb(Image.fromarray(sixteen.astype(np.int32)), "i.png")
    assert np.array_equal(np.asarray(from_i), np.asarray(Image.fromarray(eight).convert("RGB")))
    with pytest.raises(DataError, match=r"wide\.png.*0–65535"):
        to_rgb(Image.fromarray(np.full((4, 4), 70000, dtype=np.int32)), "wide.png")
    keyed = Image.fromarray(sixteen)
    keyed.info["transparency"] = 0
    assert to_rgb(keyed, "k.png").getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(keyed, "k.png").getpixel((31, 31)) == (255, 255, 255)  # 65535 is white anyway
    assert to_rgb(keyed, "k.png").getpixel((1, 0)) == (0, 0, 0)  # 64 of 65535 rounds to 0


def test_cmyk_jpeg_and_unsupported_modes(tmp_path):
    two_classes(tmp_path, {"cmyk.jpg": Image.new("CMYK", (32, 32), (0, 255, 255, 64))})
    red = np.zeros((32, 32, 3))
    red[...] = (191, 0, 0)  # R = (255 − C)(255 − K)/255
    torch.testing.assert_close(tensors_of(tmp_path)["cmyk.jpg"], expected(red), atol=3 * ONE_LEVEL, rtol=0)
    with pytest.raises(DataError, match=r"float\.tif has mode F"):
        to_rgb(Image.new("F", (4, 4)), "float.tif")


def test_folder_rules(tmp_path):
    two_classes(tmp_path, {"good.png": Image.new("RGB", (32, 32))})
    train = tmp_path / "train"
    (train / "a" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (train / ".ipynb_checkpoints").mkdir()
    (train / "README.md").write_text("two classes")
    assert ImageFolderDataset(tmp_path, "train", preprocess=PRE).class_names == ["a", "b"]
    with pytest.raises(DataError, match="no test/ folder"):
        ImageFolderDataset(tmp_path, "test", preprocess=PRE)

    (train / "a" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError) as error:
        ImageFolderDataset(tmp_path, "train", preprocess=PRE)
    assert "move it out of the class folder" in one_line(error, "notes.txt")
    (train / "a" / "notes.txt").unlink()

    (train / "a" / "more").mkdir()
    with pytest.raises(DataError, match=r"a/more is a folder inside class folder"):
        ImageFolderDataset(tmp_path, "train", preprocess=PRE)
    (train / "a" / "more").rmdir()

    Image.new("RGB", (8, 8)).save(train / "stray.png")
    with pytest.raises(DataError, match=r"stray\.png is not inside a class folder"):
        ImageFolderDataset(tmp_path, "train", preprocess=PRE)
    (train / "stray.png").unlink()

    (tmp_path / "val" / "a").mkdir(parents=True)
    (tmp_path / "val" / "c").mkdir()
    with pytest.raises(DataError, match=r"classes \['a', 'c'\].*every split needs the same class folders"):
        ImageFolderDataset(tmp_path, "val", preprocess=PRE)

    with pytest.raises(DataError) as error:
        ImageFolderDataset(tmp_path, "train", preprocess=PRE, masks=tmp_path / "masks")
    assert one_line(error, "masks/a/good.png").startswith("mask")

    (train / "b" / "plain.png").unlink()
    (train / "b").rmdir()
    with pytest.raises(
        DataError, match=r"single class folder \(a\); a classifier needs at least two classes"
    ):
        ImageFolderDataset(tmp_path, "train", preprocess=PRE)


def test_empty_class_folder_and_missing_folder_are_errors(tmp_path):
    two_classes(tmp_path, {"good.png": Image.new("RGB", (32, 32))})
    (tmp_path / "train" / "empty").mkdir()
    (tmp_path / "train" / "empty" / ".DS_Store").write_bytes(b"")
    with pytest.raises(DataError, match=r"class folder \S+empty holds no images"):
        ImageFolderDataset(tmp_path, "train", preprocess=PRE)
    with pytest.raises(DataError, match="does not exist"):
        ImageFolderDataset(tmp_path / "nope", "train", preprocess=PRE)


def test_exported_domain_reads_back_as_the_same_images_and_masks(tmp_path):
    from typer.testing import CliRunner

    from explainvec.cli.main import app

    args = ["domains", "--export", "geo", "--to", str(tmp_path / "geo"), "--size", "40"]
    assert CliRunner().invoke(app, args).exit_code == 0
    original = SyntheticDataset("geo", "val", size=40, preprocess=PRE, patch_size=8)
    folder = ImageFolderDataset(
        tmp_path / "geo", "val", preprocess=PRE, masks=tmp_path / "geo" / "masks" / "val"
    )
    assert folder.class_names == sorted(original.class_names)  # folders are read in sorted order
    for (path, _), (image, label, mask) in zip(folder.files, folder, strict=True):
        expected, expected_label, expected_mask = original[int(path.stem)]
        assert folder.class_names[label] == original.class_names[expected_label]
        assert torch.equal(mask, expected_mask)
        torch.testing.assert_close(image, expected, atol=1.5 / 255 / 0.5, rtol=0)
