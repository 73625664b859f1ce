"""Bad input on the way in: broken image folders, non-finite weights and images, and vectors applied where
they do not fit. Each is refused with a one-line error naming what is wrong, and nothing is written."""

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from explainvec.cli.main import app
from explainvec.evaluation.explain_files import ImageItem, explain_to_folder
from explainvec.io import write_tensors
from explainvec.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from explainvec.models.self_explaining import SelfExplainingViT
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
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["explanations.json", "fine.png"]


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
