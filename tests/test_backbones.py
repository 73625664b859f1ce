"""timm ViTs by name with weights from local files, through the same command line as the tiny presets."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from explainvec.cli.main import app
from explainvec.evaluation.explain_files import read_explained
from explainvec.models.backbones import timm_base
from explainvec.models.checkpoint import load_checkpoint

NAME = "vit_tiny_patch16_224"
runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """A randomly initialised vit_tiny_patch16_224 (at 64 px) saved in every supported weight format."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    state = timm.create_model(NAME, pretrained=False, img_size=64).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    torch.save(state, folder / "pytorch_model.bin")
    torch.save({"model": state, "epoch": 3}, folder / "checkpoint.pth")  # a training checkpoint, nested
    return folder, state


def test_every_weight_format_gives_the_same_base(weight_files):
    folder, state = weight_files
    bases = [timm_base(f"timm:{NAME}", weights=folder / f, image_size=32) for f in
             ("model.safetensors", "pytorch_model.bin", "checkpoint.pth")]  # fmt: skip
    assert len({b.meta.base_fingerprint for b in bases}) == 1
    model = bases[0].model
    assert tuple(model.patch_embed.grid_size) == (2, 2)  # 32 px / 16: positions resampled from 4x4
    torch.testing.assert_close(model.blocks[3].mlp.fc1.weight, state["blocks.3.mlp.fc1.weight"])
    # Preprocessing comes from timm's data config of the model, at the requested size.
    assert bases[0].meta.preprocess.crop_pct == timm.create_model(NAME).pretrained_cfg["crop_pct"]
    assert bases[0].meta.preprocess.image_size == 32


def test_nothing_downloads_and_pickles_are_refused(tmp_path, weight_files):
    with pytest.raises(ValueError, match="--weights FILE"):
        timm_base(f"timm:{NAME}")

    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):  # unpickling this calls open(marker, "w"): the file appears
            return (open, (str(marker), "w"))

    torch.save({"model": Payload()}, tmp_path / "evil.pth")
    refusal = None
    try:
        timm_base(f"timm:{NAME}", weights=tmp_path / "evil.pth")
    except Exception as error:  # whatever happened, the payload must not have run
        refusal = error
    assert not marker.exists(), "the pickle was unpickled with its code"
    assert isinstance(refusal, ValueError) and "weights-only" in str(refusal)
    with pytest.raises(ValueError, match="no model named"):
        timm_base("timm:vit_does_not_exist")
    gap = "vit_medium_patch16_gap_256"  # global average pooling, no class token
    torch.save(timm.create_model(gap, img_size=32).state_dict(), tmp_path / "gap.pth")
    with pytest.raises(ValueError, match="class token"):
        timm_base(f"timm:{gap}", weights=tmp_path / "gap.pth", image_size=32)


def test_import_train_vector_apply_explain_through_the_cli(tmp_path, weight_files):
    folder, _ = weight_files
    files = {
        name: tmp_path / f"{name}.safetensors" for name in ("base", "predict", "explain", "tau", "edited")
    }
    weights = ["--weights", folder / "pytorch_model.bin", "--img-size", 32]
    run("import", f"timm:{NAME}", *weights, "--out", files["base"])
    imported = load_checkpoint(files["base"])
    assert imported.meta.architecture == {"timm_model": NAME, "img_size": 32, "num_classes": 1000}
    small = ["--data", "synthetic:geo", "--train-size", 32, "--epochs", 1, "--batch-size", 16]
    # --base timm:<name> with --weights, or the imported checkpoint: the same base either way.
    run("train", "--base", f"timm:{NAME}", *weights, *small, "--out", files["predict"])
    value = ["--mode", "explain", "--value-model", files["predict"]]
    run("train", "--base", files["base"], *small, *value, "--out", files["explain"])
    run("vector", "--explain", files["explain"], "--predict", files["predict"], "--out", files["tau"])
    run(
        "apply", "--model", files["predict"], "--vector", files["tau"], "--lam", 0.5, "--out", files["edited"]
    )
    run(
        "explain",
        "--model",
        files["edited"],
        "--data",
        "synthetic:geo",
        "--count",
        2,
        "--out",
        tmp_path / "maps",
    )
    edited = load_checkpoint(tmp_path / "edited.safetensors")
    predict = load_file(str(tmp_path / "predict.safetensors"))
    tau = load_file(str(tmp_path / "tau.safetensors"))
    name = "blocks.11.attn.qkv.weight"
    torch.testing.assert_close(edited.model.state_dict()[name], predict[name] + 0.5 * tau[name])
    assert edited.meta.architecture["timm_model"] == NAME
    explained = read_explained(tmp_path / "maps")
    assert explained.attributions.shape == (2, 4, 5)  # 2 images, 2x2 patches × 5 classes
