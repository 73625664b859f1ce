"""Fashion-MNIST: the idx reader, the ``fashion:`` data names, splits and class subsets."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from tests.fashion_files import idx_bytes, write_fashion

from explainvec.data import fashion
from explainvec.data.folder import DataError
from explainvec.data.idx import read_idx
from explainvec.data.preprocess import Preprocess
from explainvec.data.sources import data_class_names, load_data

PRE = Preprocess(image_size=28)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_reader_round_trips_what_the_test_wrote(tmp_path, compress):
    array = np.random.default_rng(0).integers(0, 256, (3, 5, 4), dtype=np.uint8)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(idx_bytes(array)) if compress else idx_bytes(array))
    read = read_idx(path)
    assert read.shape == (3, 5, 4)
    np.testing.assert_array_equal(read, array)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x00\x08\x01" + (2).to_bytes(4, "big") + b"ab", "bad magic"),
        (b"\x00\x00\x0d\x01" + (2).to_bytes(4, "big") + b"ab", "not unsigned byte"),
        (b"\x00\x00\x08\x02" + (2).to_bytes(4, "big"), "truncated"),
        (b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"ab", "file holds 2"),
    ],
)
def test_idx_reader_names_the_file_of_a_damaged_one(tmp_path, data, message):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    arrays = write_fashion(tmp_path / "fm")
    monkeypatch.setenv(fashion.FOLDER_VARIABLE, str(tmp_path / "fm"))
    return tmp_path / "fm", arrays


def test_subsets_are_disjoint_and_relabelled_in_subset_order(folder):
    tops = load_data("fashion:tops", "train", preprocess=PRE, patch_size=4)
    other = load_data("fashion:other", "train", preprocess=PRE, patch_size=4)
    assert set(fashion.SUBSETS["tops"]).isdisjoint(fashion.SUBSETS["other"])
    assert tops.class_names == ["t-shirt/top", "pullover", "dress", "coat", "shirt"]
    assert data_class_names("fashion:other") == other.class_names
    # every pixel value encodes the original label: 10 · label + 5 inside the square
    for data in (tops, other):
        original = (data.pixels[:, 0, 14, 14].long() - 5) // 10
        subset = [fashion.CLASSES.index(n) for n in data.class_names]
        assert set(original.tolist()) <= set(subset)
        np.testing.assert_array_equal(original.numpy(), np.array(subset)[data.labels.numpy()])


def test_splits_are_deterministic_disjoint_and_size_takes_a_prefix(folder):
    root, (images, _) = folder[0], folder[1]["train"]
    a = load_data("fashion:all", "train", preprocess=PRE, patch_size=4, seed=0)
    b = load_data("fashion:all", "train", preprocess=PRE, patch_size=4, seed=5)
    val = load_data(f"fashion:all@{root}", "val", preprocess=PRE, patch_size=4)
    assert len(a) + len(val) == len(images) and len(val) == round(fashion.VAL_SHARE * len(images))
    assert (a.pixels == b.pixels).all() and (a.labels == b.labels).all()
    train_index = fashion.split_indices(len(images), "train")
    assert set(train_index).isdisjoint(fashion.split_indices(len(images), "val"))
    first = load_data("fashion:all", "train", preprocess=PRE, patch_size=4, size=10)
    assert (first.pixels == a.pixels[:10]).all()
    test = load_data("fashion:all", "test", preprocess=PRE, patch_size=4)
    assert len(test) == 50


def test_items_are_normalised_with_the_silhouette_as_mask(folder):
    data = load_data("fashion:all", "test", preprocess=PRE, patch_size=4)
    image, label, mask = data[0]
    assert 0 <= label < 10
    assert image.shape == (3, 28, 28) and mask.shape == (28, 28)
    assert mask[6:22, 6:22].all() and mask.sum() == 16 * 16
    assert image[:, 0, 0].tolist() == [-1.0, -1.0, -1.0]
    resized = load_data("fashion:all", "test", preprocess=Preprocess(image_size=56), patch_size=8)
    assert resized[0][0].shape == (3, 56, 56) and resized[0][2].sum() == 32 * 32


def test_torchvision_raw_layout_and_plain_files_are_found(tmp_path):
    write_fashion(tmp_path / "root" / "FashionMNIST" / "raw", compress=False)
    data = load_data(f"fashion:shoes@{tmp_path / 'root'}", "test", preprocess=PRE, patch_size=4)
    assert data.class_names == ["sandal", "sneaker", "ankle boot"] and len(data) > 0


def test_missing_folder_and_unknown_subset_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no Fashion-MNIST idx files"):
        load_data(f"fashion:all@{tmp_path}", "train", preprocess=PRE, patch_size=4)
    with pytest.raises(DataError, match="unknown Fashion-MNIST subset 'hats'"):
        data_class_names("fashion:hats")


@pytest.mark.skipif(
    not fashion.DEBIAN_FOLDER.is_dir(), reason="Debian's dataset-fashion-mnist package is not installed"
)
def test_the_real_files_read_whole(monkeypatch):
    monkeypatch.delenv(fashion.FOLDER_VARIABLE, raising=False)
    train = load_data("fashion:all", "train", preprocess=PRE, patch_size=4)
    test = load_data("fashion:tops", "test", preprocess=PRE, patch_size=4)
    assert len(train) == 54_000 and len(test) == 5000
    assert np.bincount(train.labels.numpy()).tolist() == pytest.approx([5400] * 10, abs=150)
