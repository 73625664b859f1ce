"""Bad input on the way in: broken image folders, non-finite weights and images, and vectors applied where
they do not fit. Each is refused with a one-line error naming what is wrong, and nothing is written."""

import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import explainvec.cli.explain
import explainvec.io
from explainvec.cli.main import app
from explainvec.data import Preprocess, load_data
from explainvec.data.synthetic import SPLITS
from explainvec.errors import ExplainvecError, FileFormatError, OutputError
from explainvec.evaluation.explain_files import ImageItem, explain_to_folder
from explainvec.io import write_tensors
from explainvec.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.models.vit import build_vit
from explainvec.vectors import ExplainabilityVector
from tiny import TINY, make_checkpoint

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def make_vector(predict: Checkpoint) -> ExplainabilityVector:
    """τ from ``predict`` and a slightly moved copy of it."""
    explain = copy.deepcopy(predict.model)
    with torch.no_grad():
        for p in explain.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return ExplainabilityVector.from_checkpoints(Checkpoint(explain, predict.meta), predict)


def error_lines(output: str) -> list[str]:
    assert "Traceback" not in output, output
    return [line for line in output.splitlines() if line.startswith("error:")]


def image_folder(root):
    """``root/{train,val}/{a,b}`` with four small random PNGs per class."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(4):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


@pytest.mark.parametrize(("broken", "workers"), [("not-an-image", 0), ("truncated", 0), ("truncated", 1)])
def test_train_on_a_broken_folder_exits_2_and_writes_nothing(tmp_path, broken, workers):
    base = save_checkpoint(tmp_path / "base.safetensors", make_checkpoint(kind="base"))
    data = image_folder(tmp_path / "data")
    bad = data / "train" / "a" / "bad.png"
    if broken == "not-an-image":  # found when the dataset is built, before training
        bad.write_text("a text file with an image's name\n")
    else:  # the header is intact: found when the first batch is read
        whole = (data / "train" / "a" / "0.png").read_bytes()
        bad.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "models" / "x.safetensors"
    args = ["--out", out, "--epochs", 1, "--batch-size", 4, "--workers", workers]
    result = invoke("train", "--base", base, "--data", data, *args)
    assert result.exit_code == 2, result.output
    [line] = error_lines(result.output)
    assert str(bad) in line
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    """The writer has written half its bytes when the disk fills up: the file written before is intact and
    the temporary file is removed (the refusals above happen before any write starts)."""
    path = write_tensors(tmp_path / "t.safetensors", {"w": torch.arange(4.0)})
    old = path.read_bytes()

    def half_then_disk_full(target):
        target.write_bytes(b"x" * (len(old) // 2))
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match=r"cannot write \S+t\.safetensors: no space left on device"):
        explainvec.io.atomic_write(path, half_then_disk_full)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]


def test_non_finite_weights_are_refused_on_write_and_on_load(tmp_path):
    with pytest.raises(ValueError, match=r"t\.safetensors: tensor 'w' holds NaN or Inf"):
        write_tensors(
            tmp_path / "t.safetensors", {"ok": torch.zeros(2), "w": torch.tensor([1.0, float("inf")])}
        )
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either
    write_tensors(
        tmp_path / "ints.safetensors", {"counts": torch.tensor([1, 2])}
    )  # integers are always finite

    checkpoint = make_checkpoint()
    path = save_checkpoint(tmp_path / "m.safetensors", checkpoint)
    state = {k: v.clone() for k, v in checkpoint.model.state_dict().items()}
    state["blocks.0.attn.qkv.weight"][3, 1] = float("nan")
    save_file(state, str(path))  # written behind the library's back
    with pytest.raises(ValueError, match=r"m\.safetensors: tensor 'blocks\.0\.attn\.qkv\.weight' holds NaN"):
        load_checkpoint(path)

    vector_path = make_vector(checkpoint).save(tmp_path / "tau.safetensors")
    tensors = {k: v.clone() for k, v in ExplainabilityVector.load(vector_path).tensors.items()}
    tensors["pos_embed"][0, 0, 0] = float("-inf")
    save_file(tensors, str(vector_path))
    with pytest.raises(ValueError, match=r"tau\.safetensors: tensor 'pos_embed' holds NaN or Inf"):
        ExplainabilityVector.load(vector_path)

    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    (tmp_path / "junk.json").write_text(json.dumps(checkpoint.meta.model_dump(mode="json")))
    with pytest.raises(ValueError, match=r"junk\.safetensors is not a readable safetensors file"):
        load_checkpoint(tmp_path / "junk.safetensors")


def test_apply_with_a_nan_vector_exits_2_and_writes_nothing(tmp_path):
    target = make_checkpoint()
    model = save_checkpoint(tmp_path / "target.safetensors", target)
    vector = make_vector(target).save(tmp_path / "tau.safetensors")
    tensors = dict(ExplainabilityVector.load(vector).tensors)
    tensors["norm.weight"] = torch.full_like(tensors["norm.weight"], float("nan"))
    save_file(tensors, str(vector))
    out = tmp_path / "edited.safetensors"
    result = invoke("apply", "--model", model, "--vector", vector, "--out", out, "--lam", 1.0)
    assert result.exit_code == 2, result.output
    [line] = error_lines(result.output)
    assert "tau.safetensors" in line and "'norm.weight' holds NaN or Inf" in line
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_non_finite_image_is_refused_before_anything_is_written(tmp_path):
    checkpoint = make_checkpoint()
    model = SelfExplainingViT.from_checkpoint(checkpoint).eval()
    good, bad = torch.zeros(3, 32, 32), torch.zeros(3, 32, 32)
    bad[1, 5, 7] = float("nan")
    items = [ImageItem("fine", good), ImageItem("broken", bad)]
    with pytest.raises(ValueError, match="image broken holds NaN or Inf after preprocessing"):
        explain_to_folder(model, checkpoint.meta.preprocess, items, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    explain_to_folder(model, checkpoint.meta.preprocess, items[:1], tmp_path / "out")
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["attributions.npy", "explanations.json", "fine.png"]


def test_vector_refuses_another_architecture_grid_or_base(tmp_path):
    source = make_checkpoint()
    tau = make_vector(source)
    deeper = make_checkpoint({**TINY, "depth": 2}, base=source.meta.base_fingerprint)
    finer = make_checkpoint({**TINY, "img_size": 56}, base=source.meta.base_fingerprint)  # 7x7 patches
    other_base = make_checkpoint(seed=1)
    tau.check_compatible(make_checkpoint(seed=2, base=source.meta.base_fingerprint))  # same base: fine
    for force in (False, True):
        with pytest.raises(ValueError, match=r"another architecture \(differs in: depth"):
            tau.check_compatible(deeper, force=force)
        with pytest.raises(ValueError, match="made for a 4x4 patch grid, the model has 7x7"):
            tau.check_compatible(finer, force=force)
    with pytest.raises(ValueError, match=r"another base fingerprint; use --force") as error:
        tau.check_compatible(other_base)
    assert source.meta.base_fingerprint in str(error.value) and other_base.meta.base_fingerprint in str(
        error.value
    )
    tau.check_compatible(other_base, force=True)
    # The other way round, a 7x7 vector on a 4x4 model.
    with pytest.raises(ValueError, match="made for a 7x7 patch grid, the model has 4x4"):
        make_vector(finer).check_compatible(source, force=True)


def test_apply_force_overrides_the_base_only(tmp_path):
    source = make_checkpoint()
    vector = make_vector(source).save(tmp_path / "tau.safetensors")
    other_base = save_checkpoint(tmp_path / "other.safetensors", make_checkpoint(seed=1))
    finer = make_checkpoint({**TINY, "img_size": 56}, base=source.meta.base_fingerprint)
    finer_path = save_checkpoint(tmp_path / "finer.safetensors", finer)
    out = tmp_path / "edited.safetensors"

    result = invoke("apply", "--model", other_base, "--vector", vector, "--out", out)
    assert result.exit_code == 2 and "use --force" in error_lines(result.output)[0]
    assert not out.exists()

    for flags in ((), ("--force",)):
        result = invoke("apply", "--model", finer_path, "--vector", vector, "--out", out, *flags)
        assert result.exit_code == 2, result.output
        assert "made for a 4x4 patch grid, the model has 7x7" in error_lines(result.output)[0]
        assert not out.exists()

    result = invoke("apply", "--model", other_base, "--vector", vector, "--out", out, "--force", "--lam", 0.5)
    assert result.exit_code == 0, result.output
    assert "different bases" in result.output
    edited = load_checkpoint(out)
    assert edited.meta.kind == "edited" and edited.meta.explanation.lam == 0.5
    moved = (
        edited.model.state_dict()["blocks.0.mlp.fc1.weight"]
        - load_checkpoint(other_base).model.state_dict()["blocks.0.mlp.fc1.weight"]
    )
    torch.testing.assert_close(
        moved, 0.5 * ExplainabilityVector.load(vector).tensors["blocks.0.mlp.fc1.weight"]
    )


class Crash(BaseException):
    """A process killed between two renames (nothing catches it, as nothing catches SIGKILL)."""


@pytest.mark.parametrize("save", ["checkpoint", "vector"])
def test_a_save_killed_between_its_two_renames_leaves_a_pair_that_is_refused(tmp_path, monkeypatch, save):
    old, new = make_checkpoint(seed=0), make_checkpoint(seed=1)
    path = tmp_path / "m.safetensors"
    write, load = {
        "checkpoint": (lambda c: save_checkpoint(path, c), load_checkpoint),
        "vector": (lambda c: make_vector(c).save(path), ExplainabilityVector.load),
    }[save]
    write(old)
    renames, replace = [], os.replace

    def replace_then_crash(source, target):
        if renames:
            raise Crash
        renames.append(target)
        replace(source, target)

    monkeypatch.setattr(explainvec.io.os, "replace", replace_then_crash)
    with pytest.raises(Crash):
        write(new)
    monkeypatch.undo()
    assert renames == [path]  # the weights are new, the sidecar is the old one
    with pytest.raises(FileFormatError, match=r"m\.safetensors and \S+m\.json were not written together"):
        load(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]  # no temporary left


def test_an_unexpected_error_is_one_line_exit_1_with_a_hint_and_debug_shows_it(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something\nnobody expected")

    monkeypatch.setattr(explainvec.cli.explain, "load_checkpoint", broken)
    args = ["explain", "--model", tmp_path / "m.safetensors", "--out", tmp_path / "maps"]
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    [line] = error_lines(result.output)
    assert line.startswith("error: RuntimeError: something nobody expected") and "--debug" in line
    result = runner.invoke(app, ["--debug", *map(str, args)])
    assert isinstance(result.exception, RuntimeError)
    assert not (tmp_path / "maps").exists()


def test_file_names_that_are_not_utf8_are_explained_and_split(tmp_path):
    model = save_checkpoint(tmp_path / "m.safetensors", make_checkpoint())
    folder = tmp_path / "data"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for i in range(20):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    odd = Path(os.fsdecode(bytes(folder / "a") + b"/caf\xe9.png"))
    shutil.copy(folder / "a" / "0.png", odd)
    result = invoke("explain", odd, "--model", model, "--out", tmp_path / "maps")
    assert result.exit_code == 0, result.output
    [record] = json.loads((tmp_path / "maps" / "explanations.json").read_text(encoding="utf-8"))["images"]
    assert record["name"] == "000-caf\ufffd" and (tmp_path / "maps" / record["image"]).is_file()
    preprocess = Preprocess(image_size=32)
    splits = [load_data(str(folder), s, preprocess=preprocess, patch_size=8) for s in SPLITS]
    assert sum(len(split) for split in splits) == 41  # hashed into a split like any other name


@st.composite
def json_values(draw):
    return draw(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-2, 70),
            st.sampled_from([10**7, 2**40, -(10**9)]),
            st.floats(-1e3, 1e3),
            st.text(max_size=4),
            st.sampled_from(["explainvec-checkpoint/1", "explainvec-checkpoint/99", "explainvec-vector/1"]),
            st.lists(st.integers(0, 5), max_size=3),
            st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2),
        )
    )


def paths_of(data, prefix=()):
    """Every key path into ``data`` (dicts and lists), as tuples."""
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in children:
        yield (*prefix, key)
        yield from paths_of(value, (*prefix, key))


def mutate_sidecar(draw, data: dict) -> dict:
    """``data`` with one to three keys set to another value, deleted, or added."""
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(sorted(paths_of(data), key=str)))
        *parents, last = path
        parent = data
        for key in parents:
            parent = parent[key]
        operation = draw(st.sampled_from(["set", "delete", "add"]))
        if operation == "set":
            parent[last] = draw(json_values())
        elif operation == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "patch_size", "explain_adapter", "weights_id"]))] = draw(
                json_values()
            )
    return data


def mutate_tensors(draw, tensors: dict) -> dict:
    """``tensors`` with at most one dropped, added, reshaped, scaled or NaN tensor."""
    tensors = dict(tensors)
    name = draw(st.sampled_from(sorted(tensors)))
    operation = draw(st.sampled_from(["none", "drop", "add", "reshape", "scale", "nan"]))
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    if operation == "drop":
        del tensors[name]
    elif operation == "add":
        tensors[draw(st.sampled_from(["extra", "head.weight", "blocks.1.norm1.weight"]))] = torch.zeros(shape)
    elif operation == "reshape":
        tensors[name] = torch.zeros(shape)
    elif operation == "scale":
        tensors[name] = tensors[name] * 1e30
    elif operation == "nan":
        tensors[name] = torch.full_like(tensors[name], float("nan"))
    return tensors


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    """The bytes of a valid checkpoint and a valid vector, their sidecars and tensors."""
    folder = tmp_path_factory.mktemp("valid")
    checkpoint = make_checkpoint()
    files = {"checkpoint": save_checkpoint(folder / "m.safetensors", checkpoint)}
    files["vector"] = make_vector(checkpoint).save(folder / "tau.safetensors")
    return {
        kind: (json.loads(path.with_suffix(".json").read_text()), load_file(str(path)), header_metadata(path))
        for kind, path in files.items()
    }


def header_metadata(path):
    with safe_open(str(path), framework="pt") as file:
        return file.metadata()


def consistent_checkpoint(path):
    checkpoint = load_checkpoint(path)
    names, model = checkpoint.meta.class_names, checkpoint.model
    assert model.num_classes == len(names)
    assert {n: tuple(t.shape) for n, t in model.state_dict().items()} == {
        n: tuple(t.shape) for n, t in load_file(str(path)).items()
    }
    size = checkpoint.meta.preprocess.image_size
    with torch.no_grad():
        assert model(torch.zeros(1, 3, size, size)).shape == (1, len(names))


def consistent_vector(path):
    tau = ExplainabilityVector.load(path)
    target = build_vit({**tau.meta.architecture, "num_classes": 3})
    edited = tau.apply_to(target, 0.5)
    state = edited.state_dict()
    assert all(state[n].shape == t.shape for n, t in tau.tensors.items())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_load_consistently_or_fail_with_the_project_error(valid_files, tmp_path, data):
    kind = data.draw(st.sampled_from(["checkpoint", "vector"]))
    sidecar, tensors, metadata = valid_files[kind]
    if data.draw(st.booleans()):
        sidecar = mutate_sidecar(data.draw, sidecar)
    else:
        tensors = mutate_tensors(data.draw, tensors)
        metadata = data.draw(st.sampled_from([metadata, None]))  # written by hand, id kept or not
    path = tmp_path / f"{kind}.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    try:
        (consistent_checkpoint if kind == "checkpoint" else consistent_vector)(path)
        event(f"{kind} loaded")
    except ExplainvecError as error:  # the project's error: fine; any other fails the test
        event(f"{kind} refused: {str(error).replace(str(tmp_path), '')[:60]}")
