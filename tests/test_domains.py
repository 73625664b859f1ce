import numpy as np
import pytest
import torch

from explainvec.data import DOMAINS, Preprocess, SyntheticDataset, get_domain, rasterise

PRE = Preprocess(image_size=32)


def make(domain="geo", split="train", seed=0, size=24, preprocess=PRE):
    return SyntheticDataset(domain, split, size=size, preprocess=preprocess, patch_size=8, seed=seed)


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_same_seed_gives_same_bytes(domain):
    a, b = make(domain), make(domain)
    assert a.pixels.numpy().tobytes() == b.pixels.numpy().tobytes()
    assert torch.equal(a.masks, b.masks) and torch.equal(a.labels, b.labels)


def test_seed_split_and_domain_change_the_images():
    base = make().pixels
    assert not torch.equal(base, make(seed=1).pixels)
    assert not torch.equal(base, make(split="test").pixels)
    assert not torch.equal(base, make("geo-pastel").pixels)


def test_image_i_does_not_depend_on_dataset_size():
    assert torch.equal(make(size=5).pixels, make(size=24).pixels[:5])


def test_masks_cover_the_drawn_class_shapes_only():
    data = make("geo", size=64)  # plain style: flat background, no noise
    for pixels, mask, label in zip(data.pixels, data.masks, data.labels, strict=True):
        image = pixels.permute(1, 2, 0).numpy().astype(int)
        assert mask.any(), "every image shows its class"
        background = image[~mask.numpy()]
        colours, counts = np.unique(background.reshape(-1, 3), axis=0, return_counts=True)
        bg = colours[counts.argmax()]
        assert (np.abs(image[mask.numpy()] - bg).sum(-1) > 0).all(), "mask pixels are object pixels"
        # The mask is a union of whole shapes of the labelled class, each inside a patch-sized window.
        assert mask.sum() >= rasterise(data.class_names[label], 5).sum() * 0.5


def test_mask_shapes_sit_in_patch_cells():
    data = make("glyphs", size=64)
    for mask in data.masks:
        cells = mask.reshape(4, 8, 4, 8).permute(0, 2, 1, 3).reshape(16, 64).any(1)
        assert 1 <= int(cells.sum()) <= get_domain("glyphs").max_instances * 4


def test_class_balance_and_normalisation():
    data = make("mixture", size=1000)
    counts = data.labels.bincount(minlength=10)
    assert counts.min() > 60
    image, _, mask = data[0]
    assert image.shape == (3, 32, 32) and image.min() >= -1 and image.max() <= 1
    assert mask.shape == (32, 32)


def test_image_and_patch_size_are_config_values():
    data = SyntheticDataset("geo", "val", size=4, preprocess=Preprocess(image_size=64), patch_size=16)
    assert data.pixels.shape == (4, 3, 64, 64)
    with pytest.raises(ValueError, match="multiple"):
        SyntheticDataset("geo", "val", size=4, preprocess=Preprocess(image_size=60), patch_size=16)


def test_unknown_domain_names_the_known_ones():
    with pytest.raises(ValueError, match="glyphs"):
        make("nope")
