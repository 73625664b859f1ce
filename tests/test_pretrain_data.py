"""``explainvec pretrain --data``: a base pretrained on any data source, with or without patch dropping."""

from __future__ import annotations

from tests.fashion_files import write_fashion
from typer.testing import CliRunner

from explainvec.cli.main import app
from explainvec.data.export import export_domain
from explainvec.models.checkpoint import load_checkpoint

runner = CliRunner()


def test_pretrain_on_a_tiny_image_folder_without_patch_dropping(tmp_path):
    folder = tmp_path / "shapes"
    export_domain("glyphs", folder, sizes={"train": 30, "val": 30, "test": 30}, image_size=32)
    out = tmp_path / "base.safetensors"
    args = ["pretrain", "--data", str(folder), "--out", str(out), "--epochs", "1", "--no-patch-drop"]
    result = runner.invoke(app, [*args, "--patch-size", "16"])
    assert result.exit_code == 0, result.output
    base = load_checkpoint(out)
    assert base.meta.kind == "base" and base.meta.training.data == str(folder)
    assert base.meta.class_names == ["bowtie", "diamond", "ell", "tee", "xmark"]
    assert base.meta.training.config["keep_min"] == 1.0
    assert base.model.patch_embed.grid_size == (2, 2)
    before = out.read_bytes()
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "exists" in again.output and out.read_bytes() == before


def test_pretrain_on_fashion_mnist_at_28_pixels(tmp_path, monkeypatch):
    write_fashion(tmp_path / "fm", train=120, test=20)
    out = tmp_path / "base.safetensors"
    data = f"fashion:all@{tmp_path / 'fm'}"
    result = runner.invoke(
        app, ["pretrain", "--data", data, "--preset", "28px-7x7", "--out", str(out), "--epochs", "1"]
    )
    assert result.exit_code == 0, result.output
    base = load_checkpoint(out)
    assert base.model.patch_embed.grid_size == (7, 7) and len(base.meta.class_names) == 10
    assert base.meta.training.config["keep_min"] == 0.5  # patch dropping is on unless switched off


def test_a_patch_size_that_does_not_divide_the_image_is_refused(tmp_path):
    result = runner.invoke(app, ["pretrain", "--out", str(tmp_path / "b.safetensors"), "--patch-size", "5"])
    assert result.exit_code == 2 and "not a multiple of patch size 5" in result.output
