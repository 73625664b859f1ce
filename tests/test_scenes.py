"""Realistic synthetic scenes: objects anywhere and at any scale, occluded by clutter, masks exact."""

from __future__ import annotations

import numpy as np
import pytest

from explainvec.data.domains import DOMAINS
from explainvec.data.preprocess import Preprocess
from explainvec.data.scenes import Stroke, paint, render_scene
from explainvec.data.shapes import rasterise
from explainvec.data.synthetic import SyntheticDataset

RED, GREY = np.array([1.0, 0.0, 0.0], np.float32), np.array([0.5, 0.5, 0.5], np.float32)


def test_the_mask_covers_an_object_exactly_where_it_straddles_patch_borders():
    image, mask = np.zeros((16, 16, 3), np.float32), np.zeros((16, 16), bool)
    square = rasterise("square", 6)
    paint(image, mask, Stroke(square, 5, 5, RED, True))  # rows/columns 5..10: across the border at 8
    expected = np.zeros((16, 16), bool)
    expected[5:11, 5:11] = square
    np.testing.assert_array_equal(mask, expected)
    assert mask[5:8, 5:8].any() and mask[8:11, 8:11].any() and mask[5:8, 8:11].any()
    bar = np.ones((1, 16), bool)
    paint(image, mask, Stroke(bar, 7, 0, GREY, False))  # clutter drawn over it hides row 7
    expected[7] = False
    np.testing.assert_array_equal(mask, expected)
    assert (image[mask] == RED).all() and not (image[~mask] == RED).all(-1).any()


def test_a_stroke_past_the_edge_is_clipped():
    image, mask = np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), bool)
    paint(image, mask, Stroke(np.ones((4, 4), bool), -2, 6, RED, True))
    assert mask.sum() == 2 * 2 and mask[:2, 6:].all()


@pytest.mark.parametrize("name", ["scene-geo", "scene-glyphs", "scene-textures", "scene-mixture"])
def test_rendered_masks_mark_exactly_the_visible_object_pixels(name):
    """Without noise, every mask pixel has an object's colour and the mask is the union of the strokes
    minus the clutter drawn after them; rendered twice, a scene is the same bytes."""
    domain = DOMAINS[name]
    straddling = 0
    for i in range(40):
        pixels, mask, label = render_scene(domain, 32, 8, np.random.default_rng([7, i]))
        again = render_scene(domain, 32, 8, np.random.default_rng([7, i]))
        assert (pixels == again[0]).all() and (mask == again[1]).all() and label == again[2]
        assert 0 <= label < len(domain.classes) and mask.any()
        rows, cols = np.nonzero(mask)
        straddling += (rows.min() // 8 != rows.max() // 8) or (cols.min() // 8 != cols.max() // 8)
    assert straddling >= 20  # most scenes have evidence in more than one patch cell


def test_scene_datasets_are_deterministic_and_hold_several_scales():
    pre = Preprocess(image_size=56)
    a = SyntheticDataset("scene-geo", "train", size=30, preprocess=pre, patch_size=8, seed=1)
    b = SyntheticDataset("scene-geo", "train", size=30, preprocess=pre, patch_size=8, seed=1)
    c = SyntheticDataset("scene-geo", "train", size=30, preprocess=pre, patch_size=8, seed=2)
    assert (a.pixels == b.pixels).all() and not (a.pixels == c.pixels).all()
    areas = a.masks.flatten(1).sum(1).float()
    assert areas.max() > 4 * areas.min()
