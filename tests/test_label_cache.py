import json

import pytest
import torch
from safetensors.torch import save_file

from explainvec.data import Preprocess, SyntheticDataset
from explainvec.io import write_tensors
from explainvec.models.masking import masked_logits
from explainvec.shapley import kernel_shap
from explainvec.shapley.label_cache import MERGED, LabelCache, LabelCacheMeta
from explainvec.shapley.model_games import MaskedModelGame

META = {"value_model": "x", "data": "synthetic:geo", "output": "probability", "budget": 32,
        "num_items": 8, "num_players": 16, "shard_size": 3, "seed": 0}  # fmt: skip


@pytest.fixture
def data():
    return SyntheticDataset("geo", "train", size=8, preprocess=Preprocess(image_size=32), patch_size=8)


def assert_labels_are_kernel_shap(labels, model, data, budget=32, shard_size=3, seed=0):
    """Each shard holds Kernel SHAP of the probability game, seeded by ``seed · 1 000 003 + start``; each
    image's labels sum to ``v(all) − v(∅)``."""
    images = torch.stack([data[i][0] for i in range(len(labels))])
    for start in range(0, len(labels), shard_size):
        game = MaskedModelGame(model, images[start : start + shard_size], "probability")
        generator = torch.Generator().manual_seed(seed * 1_000_003 + start)
        expected = kernel_shap(game, budget, generator=generator).values.float()
        torch.testing.assert_close(labels[start : start + shard_size], expected, atol=1e-6, rtol=0)
    with torch.no_grad():
        full = model(images).softmax(-1)
        empty = masked_logits(model, images, torch.zeros(labels.shape[:2], dtype=torch.bool)).softmax(-1)
    torch.testing.assert_close(labels.sum(1), full - empty, atol=1e-5, rtol=0)
    assert labels.abs().amax() > 0.01


def test_sharded_ranks_equal_one_process_and_resume(tiny_vit, data, tmp_path):
    single = LabelCache(tmp_path / "one")
    single.create(META)
    assert single.compute(tiny_vit, data) == 3
    single.merge()

    split = LabelCache(tmp_path / "two")
    split.create(META)
    assert split.compute(tiny_vit, data, rank=1, world_size=2) == 1
    with pytest.raises(ValueError, match="misses 2 shards"):
        split.merge()
    assert split.compute(tiny_vit, data, rank=0, world_size=2) == 2
    split.merge()
    labels = split.load()
    assert labels.shape == (8, 16, 5)
    assert torch.equal(labels, single.load())
    assert_labels_are_kernel_shap(labels, tiny_vit, data)
    # the standard errors travel with the labels (evaluate --labels reads them): shard 0's, by hand
    game = MaskedModelGame(tiny_vit, torch.stack([data[i][0] for i in range(3)]), "probability")
    expected = kernel_shap(game, 32, generator=torch.Generator().manual_seed(0)).std_errors.float()
    torch.testing.assert_close(split.load_tensors()["std_errors"][:3], expected, atol=1e-6, rtol=0)

    # A killed run resumes: only the missing shard is computed again.
    split.shard_path(3, 6).unlink()
    assert split.compute(tiny_vit, data) == 1
    assert torch.equal(split.merge() and split.load(), single.load())


def test_other_settings_are_refused(tmp_path):
    cache = LabelCache(tmp_path)
    cache.create(META)
    with pytest.raises(ValueError, match="other labels"):
        cache.create({**META, "budget": 64})
    with pytest.raises(FileNotFoundError):
        _ = LabelCache(tmp_path / "nothing").meta


def test_meta_is_a_validated_model_with_the_same_json(tmp_path):
    cache = LabelCache(tmp_path)
    cache.create(LabelCacheMeta(**META))
    # the on-disk format gained only the split; caches written before it are train-split caches
    assert json.loads((tmp_path / "meta.json").read_text()) == {**META, "split": "train"}
    assert LabelCacheMeta.model_validate_json(json.dumps(META)).split == "train"
    assert cache.meta == LabelCacheMeta(**META) and cache.meta.shard_size == 3
    cache.create(META)  # a plain dict of the same settings is the same cache
    with pytest.raises(ValueError, match="other labels: budget 32 != 64"):
        cache.create(LabelCacheMeta(**{**META, "budget": 64}))

    old = LabelCache(tmp_path / "old")  # a meta.json written as a plain dict, before the model, loads
    old.folder.mkdir()
    (old.folder / "meta.json").write_text(json.dumps(META, indent=2) + "\n")
    assert old.meta == LabelCacheMeta(**META)
    assert old.ranges() == [(0, 3), (3, 6), (6, 8)]


def test_non_finite_labels_are_refused(tmp_path):
    cache = LabelCache(tmp_path)
    cache.create(META)
    labels = torch.zeros(8, 16, 5)
    write_tensors(tmp_path / MERGED, {"values": labels})
    assert torch.equal(cache.load(), labels)
    labels[3, 2, 1] = float("nan")
    save_file({"values": labels}, str(tmp_path / MERGED))  # a damaged file: explainvec never writes NaN
    with pytest.raises(ValueError, match="non-finite labels"):
        cache.load()


@pytest.mark.parametrize(
    ("stale", "message"),
    [
        ({"value_model": "y"}, "value_model 'x' != 'y'"),
        ({"data": "synthetic:glyphs"}, "data 'synthetic:geo' != 'synthetic:glyphs'"),
        ({"seed": 1}, "seed 0 != 1"),
        ({"num_items": 9}, "num_items 8 != 9"),
    ],
)
def test_labels_of_another_value_model_data_seed_or_split_are_refused(tmp_path, stale, message):
    cache = LabelCache(tmp_path)
    cache.create(META)
    write_tensors(tmp_path / MERGED, {"values": torch.ones(8, 16, 5)})
    wanted = {"value_model": "x", "data": "synthetic:geo", "seed": 0, "num_items": 8}
    assert torch.equal(cache.load_for(**wanted), torch.ones(8, 16, 5))
    with pytest.raises(ValueError, match=f"holds other labels: {message}$"):
        cache.load_for(**{**wanted, **stale})


BAD_META = {
    "not JSON": "{not json",
    "a missing field": json.dumps({k: v for k, v in META.items() if k != "seed"}),
    "a wrong type": json.dumps({**META, "budget": "many"}),
    "an unknown field": json.dumps({**META, "colour": "red"}),
    "an impossible value": json.dumps({**META, "shard_size": 0}),
}


@pytest.mark.parametrize("problem", BAD_META)
def test_a_bad_meta_json_is_refused_naming_the_file(tmp_path, problem):
    (tmp_path / "meta.json").write_text(BAD_META[problem])
    with pytest.raises(ValueError, match=r"label cache metadata .*meta\.json is not valid"):
        _ = LabelCache(tmp_path).meta
