"""Data-parallel training (Lightning Fabric, 2 CPU processes with gloo) and resuming a killed run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.test_label_cache import assert_labels_are_kernel_shap

from explainvec.models.checkpoint import load_checkpoint, save_checkpoint
from explainvec.training.state import state_path
from tiny import TINY, make_checkpoint


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    base = make_checkpoint({**TINY, "depth": 2}, kind="base")
    return save_checkpoint(tmp_path_factory.mktemp("base") / "base.safetensors", base)


def train_args(base, out, *extra):
    args = ["train", "--base", base, "--data", "synthetic:geo", "--batch-size", 16, "--out", out, *extra]
    return [sys.executable, "-m", "explainvec", *map(str, args)]


def weights_and_loss(path):
    return load_file(str(path)), json.loads(path.with_suffix(".json").read_text())["training"]["loss"]


def assert_same_run(a, b, atol):
    (wa, la), (wb, lb) = weights_and_loss(a), weights_and_loss(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], atol=atol, rtol=0)
    assert la == pytest.approx(lb, abs=atol)


def explain_args(tmp_path, tiny_base, common, mode):
    """``train`` options of explain mode (coalition bank, or fresh coalitions), after training its value
    model on ``common``."""
    subprocess.run(train_args(tiny_base, tmp_path / "value.safetensors", *common), check=True)
    explain = ["--mode", "explain", "--value-model", tmp_path / "value.safetensors", "--coalitions", 4]
    return explain + (["--fresh-coalitions"] if mode == "explain-fresh" else [])


@pytest.mark.parametrize("mode", ["predict", "explain", "explain-fresh"])
def test_two_processes_match_one(tmp_path, tiny_base, mode):
    common = ["--train-size", 49, "--epochs", 2]  # batches of 16, 16 and 17 items
    if mode != "predict":
        common += explain_args(tmp_path, tiny_base, common, mode)
    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    subprocess.run(train_args(tiny_base, one, *common), check=True)
    launched = subprocess.run(
        train_args(tiny_base, two, *common, "--devices", 2), capture_output=True, text=True
    )
    assert launched.returncode == 0, launched.stderr
    assert "Starting with 2 processes" in launched.stderr + launched.stdout
    assert_same_run(one, two, atol=1e-5)


BIN = Path(sys.executable).parent
LAUNCHERS = {
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                 "-m", "explainvec"],
    "fabric run": [str(BIN / "fabric"), "run", "--accelerator", "cpu", "--devices", "2",
                   str(BIN / "explainvec"), "--"],
}  # fmt: skip


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_other_launchers_start_the_same_run(tmp_path, tiny_base, launcher):
    """Processes started by torchrun or ``fabric run`` (not by ``--devices``) join one run: one process's
    weights."""
    common = ["--train-size", 60, "--epochs", 2]
    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    subprocess.run(train_args(tiny_base, one, *common), check=True)
    command = LAUNCHERS[launcher] + train_args(tiny_base, two, *common, "--devices", 2)[3:]
    launched = subprocess.run(command, capture_output=True, text=True)
    assert launched.returncode == 0, launched.stderr
    assert "Starting with 2 processes" in launched.stderr + launched.stdout  # the launcher's two, no more
    assert_same_run(one, two, atol=1e-5)


@pytest.mark.parametrize("mode", ["predict", "explain"])
def test_a_killed_run_resumes_to_the_same_weights(tmp_path, tiny_base, mode):
    """In explain mode the resumed run fills its coalition bank again: the same coalitions and values."""
    common = ["--train-size", 240, "--epochs", 3, "--keep-min", 0.5]
    if mode == "explain":
        common += explain_args(tmp_path, tiny_base, common, mode)
    full, resumed = tmp_path / "full.safetensors", tmp_path / "resumed.safetensors"
    subprocess.run(train_args(tiny_base, full, *common), check=True)
    state = state_path(resumed)
    process = subprocess.Popen(train_args(tiny_base, resumed, *common, "--save-every", 4))
    while not state.is_file() and process.poll() is None:
        time.sleep(0.01)
    process.kill()
    process.wait()
    assert state.is_file() and not resumed.exists(), "the run should have been killed part-way"
    refused = subprocess.run(train_args(tiny_base, resumed, *common), capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    subprocess.run(train_args(tiny_base, resumed, *common, "--resume"), check=True)
    assert not state.exists()
    # explain mode refills its bank after the resume in other batches than the first run did: the same
    # coalitions, values equal up to the order of float sums (4.7e-10 with 2 threads), which three epochs
    # carry to the weights (6e-7 seen); with one thread the runs are identical
    assert_same_run(full, resumed, atol=0 if mode != "explain" else 1e-5)


def test_label_cache_filled_by_two_processes_equals_one(tmp_path, tiny_base):
    from explainvec.shapley.label_cache import LabelCache

    value = tmp_path / "value.safetensors"
    subprocess.run(train_args(tiny_base, value, "--train-size", 20, "--epochs", 1), check=True)
    common = ["labels", "--value-model", value, "--data", "synthetic:geo", "--train-size", 20,
              "--budget", 32, "--shard-size", 4]  # fmt: skip
    for name, extra in (("one", []), ("two", ["--devices", 2])):
        args = [*common, "--out", tmp_path / name, *extra]
        subprocess.run([sys.executable, "-m", "explainvec", *map(str, args)], check=True)
    labels = LabelCache(tmp_path / "one").load()
    torch.testing.assert_close(labels, LabelCache(tmp_path / "two").load())
    checkpoint = load_checkpoint(value)
    train = checkpoint.load_split("synthetic:geo", "train", size=20, seed=0)
    assert_labels_are_kernel_shap(labels, checkpoint.model, train, shard_size=4)
