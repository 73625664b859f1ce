"""``--device`` on the commands that run a model: ``cpu`` changes nothing, an absent device is a one-line
error, and (on a machine with a GPU) CUDA gives CPU's numbers to within float tolerance."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from explainvec.cli.main import app
from explainvec.data.preprocess import Preprocess
from explainvec.data.sources import data_class_names
from explainvec.evaluation.explain_files import read_explained
from explainvec.models.checkpoint import Checkpoint, CheckpointMeta, save_checkpoint
from explainvec.models.device import resolve_device
from explainvec.models.fingerprint import fingerprint
from explainvec.models.records import ExplanationRecord
from explainvec.models.vit import build_vit
from explainvec.vectors import ExplainabilityVector

ARCHITECTURE = {
    "img_size": 32,
    "patch_size": 8,
    "embed_dim": 32,
    "depth": 1,
    "num_heads": 2,
    "num_classes": 5,
}
DATA = "synthetic:geo"
EVERY_BASELINE = "kernelshap16,random,rollout,integrated_gradients"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny random 4x4 models on geo's classes: a prediction-only one, a perturbed self-explaining twin,
    their vector τ, and the predictor edited by λ = 1 · τ."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    base = build_vit(ARCHITECTURE)
    meta = CheckpointMeta(
        kind="predict",
        architecture=ARCHITECTURE,
        class_names=data_class_names(DATA),
        preprocess=Preprocess(image_size=32),
        base_fingerprint=fingerprint(base.state_dict()),
        training={"data": DATA},
    )
    predict = Checkpoint(base, meta)
    explained = copy.deepcopy(base)
    with torch.no_grad():
        for name, parameter in explained.named_parameters():
            if not name.startswith("head"):
                parameter.add_(0.05 * torch.randn_like(parameter))
    explanation = ExplanationRecord(readout="logit")
    explain = Checkpoint(explained, meta.model_copy(update={"kind": "explain", "explanation": explanation}))
    tau = ExplainabilityVector.from_checkpoints(explain, predict)
    edited = Checkpoint(
        tau.apply_to(base, 1.0),
        meta.model_copy(
            update={"kind": "edited", "explanation": explanation.model_copy(update={"lam": 1.0})}
        ),
    )
    paths = {name: folder / f"{name}.safetensors" for name in ("predict", "explain", "edited", "tau")}
    for name, checkpoint in (("predict", predict), ("explain", explain), ("edited", edited)):
        save_checkpoint(paths[name], checkpoint)
    tau.save(paths["tau"])
    return paths


def command_args(command, models, out, baselines=EVERY_BASELINE):
    """Arguments of a small run of ``command`` that writes under the folder ``out``."""
    if command == "explain":
        return ["explain", "--model", models["explain"], "--out", out, "--data", DATA, "--count", 3]
    if command == "evaluate":
        return ["evaluate", "--model", models["edited"], "--reference", models["predict"],
                "--vector", models["tau"], "--data", DATA, "--out", out, "--size", 16, "--images", 2,
                "--reference-budget", 32, "--baselines", baselines]  # fmt: skip
    return ["apply", "--model", models["predict"], "--vector", models["tau"], "--lam", "auto", "--data", DATA,
            "--images", 8, "--out", out / "edited.safetensors"]  # fmt: skip


def run(args, *device):
    result = invoke(*args, *device)
    assert result.exit_code == 0, result.output
    return result


def written(command, out):
    """What a run of ``command`` wrote under ``out``, less what varies by run: wall-clock costs and the
    fresh id pairing a checkpoint's weights with its sidecar."""
    if command == "explain":
        explained = read_explained(out)
        return explained.index, explained.attributions.tobytes(), sorted(p.name for p in out.iterdir())
    if command == "evaluate":
        rows = json.loads((out / "report.json").read_text())["rows"]
        timed = ("ms_per_image", "evaluation_seconds")
        return [{k: v for k, v in row.items() if k not in timed} for row in rows]
    edited = out / "edited.safetensors"
    weights = {name: t.numpy().tobytes() for name, t in load_file(str(edited)).items()}
    sidecar = json.loads(edited.with_suffix(".json").read_text())
    return weights, {k: v for k, v in sidecar.items() if k != "weights_id"}


def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for name in ("banana", "meta", "cuda:x", ""):
        with pytest.raises(ValueError, match="unknown device"):
            resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_one_line_exit_2(tmp_path, models):
    out = tmp_path / "out"
    commands = [
        *(command_args(command, models, out) for command in ("explain", "evaluate", "apply")),
        ["demo", "--out", out],
        ["train", "--base", models["predict"], "--data", DATA, "--out", out / "t.safetensors"],
        ["labels", "--value-model", models["predict"], "--data", DATA, "--out", out],
        [
            "vector",
            "--predict",
            models["predict"],
            "--base",
            models["predict"],
            "--out",
            out / "v.safetensors",
        ],
    ]
    for args in commands:
        for device in ("cuda", "cuda:1"):
            result = invoke(*args, "--device", device)
            assert result.exit_code == 2, (args[0], result.output)
            message = f"error: {device} requested but torch.cuda.is_available() is False"
            assert result.output.strip() == message, args[0]
    assert not out.exists()


@pytest.fixture
def moved_to(monkeypatch):
    """Every device a model is moved to (``Module.to``) during the test."""
    devices = []
    to = torch.nn.Module.to

    def recording(module, *args, **kwargs):
        target = kwargs.get("device", args[0] if args else None)
        if isinstance(target, str | torch.device):
            devices.append(torch.device(target))
        return to(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", recording)
    return devices


@pytest.mark.parametrize("command", ["explain", "evaluate", "apply"])
def test_device_cpu_writes_what_the_default_writes(tmp_path, models, command, moved_to):
    """``cpu:0`` is the default's CPU under another name: the models go there and the files are the same."""
    run(command_args(command, models, tmp_path / "default", baselines="random"))
    assert torch.device("cpu:0") not in moved_to
    run(command_args(command, models, tmp_path / "cpu", baselines="random"), "--device", "cpu:0")
    assert torch.device("cpu:0") in moved_to  # the option reached the models, not only the parser
    default = written(command, tmp_path / "default")
    assert default == written(command, tmp_path / "cpu")
    if command == "explain":
        assert len(default[0]["images"]) == 3 and len(default[2]) == 5  # 3 PNGs, the maps and the JSON
    elif command == "evaluate":
        assert [row["method"] for row in default] == ["model", "lambda0", "random", "random_vector"]
    else:
        assert len(default[1]["explanation"]["lambda_curve"]) == 8


@needs_cuda
def test_cuda_matches_cpu(tmp_path, models, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    for command in ("explain", "evaluate", "apply"):
        for device in ("cpu", "cuda"):
            run(command_args(command, models, tmp_path / command / device), "--device", device)

    cpu, cuda = (read_explained(tmp_path / "explain" / device) for device in ("cpu", "cuda"))
    for a, b in zip(cpu.index["images"], cuda.index["images"], strict=True):
        assert a["predicted"] == b["predicted"]
    attributions = [torch.from_numpy(np.array(run.attributions)) for run in (cuda, cpu)]
    torch.testing.assert_close(*attributions, atol=1e-4, rtol=1e-4)

    cpu, cuda = (written("evaluate", tmp_path / "evaluate" / device) for device in ("cpu", "cuda"))
    assert [row["method"] for row in cuda] == [
        "model", "lambda0", "kernelshap16", "random", "rollout", "integrated_gradients", "random_vector"
    ]  # fmt: skip
    continuous = (
        "accuracy",
        "agreement",
        "insertion_auc",
        "deletion_auc",
        "pearson",
        "mse",
        "pixel_insertion_auc",
    )
    for a, b in zip(cpu, cuda, strict=True):
        for metric in continuous:
            expected = a["metrics"][metric]["mean"]
            assert b["metrics"][metric]["mean"] == pytest.approx(expected, abs=2e-3), (a["method"], metric)

    (_, cpu), (_, cuda) = (written("apply", tmp_path / "apply" / device) for device in ("cpu", "cuda"))
    assert cuda["explanation"]["lambda"] == cpu["explanation"]["lambda"]
    for a, b in zip(cpu["explanation"]["lambda_curve"], cuda["explanation"]["lambda_curve"], strict=True):
        assert b == pytest.approx(a, abs=2e-3)
    edited = [
        load_file(str(tmp_path / "apply" / device / "edited.safetensors")) for device in ("cpu", "cuda")
    ]
    for name, tensor in edited[0].items():
        torch.testing.assert_close(edited[1][name], tensor, atol=0, rtol=0)


def test_shared_vector_accepts_device_auto(tmp_path, models):
    """``vector --base … --predict …`` trains τ on the resolved device (it used to pass "auto" to torch)."""
    common = ["vector", "--base", models["predict"], "--predict", models["predict"], "--epochs", 1,
              "--train-size", 8, "--coalitions", 2]  # fmt: skip
    run([*common, "--out", tmp_path / "auto.safetensors"], "--device", "auto")
    run([*common, "--out", tmp_path / "cpu.safetensors"], "--device", "cpu")
    auto, cpu = load_file(tmp_path / "auto.safetensors"), load_file(tmp_path / "cpu.safetensors")
    assert auto.keys() == cpu.keys()
    if not torch.cuda.is_available():  # auto is the CPU here: the same run
        for name in cpu:
            torch.testing.assert_close(auto[name], cpu[name], atol=0, rtol=0)
