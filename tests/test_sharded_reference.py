"""The evaluation's Kernel SHAP reference in shards: several processes (Lightning Fabric, 2 CPU processes
with gloo) or a label cache give one process's values; every row says what it cost."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from explainvec.data.preprocess import Preprocess
from explainvec.evaluation.suite import REFERENCE_SHARD, Batch, SuiteConfig, reference_values
from explainvec.models.checkpoint import Checkpoint, CheckpointMeta, save_checkpoint
from explainvec.models.fingerprint import fingerprint
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.models.vit import build_vit
from tiny import TINY, make_checkpoint

IMAGES = REFERENCE_SHARD + 4  # two shards, the second short


class OneOfTwo:
    """Rank ``rank`` of two processes whose sum is left to the test (``all_reduce`` returns this part)."""

    world_size = 2

    def __init__(self, rank: int) -> None:
        self.global_rank = rank

    def all_reduce(self, data: torch.Tensor, reduce_op: str = "mean") -> torch.Tensor:
        assert reduce_op == "sum"
        return data


@pytest.mark.parametrize("exact", [False, True])
def test_each_rank_computes_its_own_shards_and_their_sum_is_one_process(exact):
    size = 16 if exact else 32  # 4 players when exact
    checkpoint = make_checkpoint({**TINY, "img_size": size})
    model = SelfExplainingViT(checkpoint.model, checkpoint.meta.class_names, "logit")
    batch = Batch(torch.randn(IMAGES, 3, size, size), torch.zeros(IMAGES, dtype=torch.long))
    config = SuiteConfig(reference_budget=32, exact_reference=exact)
    one = reference_values(model, batch, config)
    parts = [reference_values(model, batch, config, OneOfTwo(rank)) for rank in (0, 1)]
    assert not parts[0].values[REFERENCE_SHARD:].any() and not parts[1].values[:REFERENCE_SHARD].any()
    torch.testing.assert_close(parts[0].values + parts[1].values, one.values, rtol=0, atol=0)
    torch.testing.assert_close(parts[0].full + parts[1].full, one.full, rtol=0, atol=0)
    assert (one.std_errors is None) == exact


def run(*args):
    result = subprocess.run(
        [sys.executable, "-m", "explainvec", *map(str, args)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result


def rows_of(out):
    rows = json.loads((out / "report.json").read_text())["rows"]
    return {row.pop("method"): row for row in rows}


def geo_model() -> Checkpoint:
    """A random tiny ViT with the classes of ``synthetic:geo``."""
    architecture = {**TINY, "depth": 2, "num_classes": 5}
    torch.manual_seed(0)
    model = build_vit(architecture).eval()
    meta = CheckpointMeta(
        kind="predict",
        architecture=architecture,
        class_names=["circle", "square", "triangle", "cross", "ring"],
        preprocess=Preprocess(image_size=32),
        base_fingerprint=fingerprint(model.state_dict()),
    )
    return Checkpoint(model, meta)


def test_evaluate_on_two_processes_equals_one_and_a_label_cache_is_reused(tmp_path):
    model = save_checkpoint(tmp_path / "m.safetensors", geo_model())
    common = ["evaluate", "--model", model, "--data", "synthetic:geo", "--images", IMAGES, "--size", IMAGES,
              "--reference-budget", 32, "--baselines", "random"]  # fmt: skip
    run(*common, "--out", tmp_path / "one")
    launched = run(*common, "--out", tmp_path / "two", "--devices", 2)
    assert "Starting with 2 processes" in launched.stderr + launched.stdout
    one, two = rows_of(tmp_path / "one"), rows_of(tmp_path / "two")
    assert list(one) == list(two) == ["model", "random"]
    for name in one:
        for timed in ("ms_per_image", "evaluation_seconds"):
            assert one[name].pop(timed) > 0 and two[name].pop(timed) > 0
    assert one == two
    # what each row cost: the model's first row also pays its reference, 32 evaluations per image
    assert one["model"]["extra"]["reference"] == "computed"
    assert one["random"]["extra"]["reference"] == "shared"
    measuring = {name: row["evaluations_per_image"] - row["forward_passes"] for name, row in one.items()}
    assert measuring["model"] - measuring["random"] == 32

    # the same reference from a label cache of the model on those test images: same numbers, no cost
    labels = ["labels", "--value-model", model, "--data", "synthetic:geo", "--split", "test", "--output",
              "logit", "--train-size", IMAGES, "--budget", 32, "--shard-size", REFERENCE_SHARD]  # fmt: skip
    run(*labels, "--out", tmp_path / "labels")
    run(*common, "--out", tmp_path / "cached", "--labels", tmp_path / "labels")
    cached = rows_of(tmp_path / "cached")
    assert cached["model"]["extra"]["reference"] == "label cache"
    assert cached["model"]["evaluations_per_image"] == one["model"]["evaluations_per_image"] - 32
    assert cached["model"]["metrics"]["pearson"] == one["model"]["metrics"]["pearson"]
    refused = subprocess.run(
        [sys.executable, "-m", "explainvec", *map(str, [*common, "--out", tmp_path / "r", "--labels",
         tmp_path / "labels", "--reference-budget", 64])], capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2 and "budget 32 != 64" in refused.stderr + refused.stdout
