"""``explain`` streamed into a folder: the binary maps read back as the model gives them, with paths and
class names; overlays drawn without a matplotlib figure, here or in worker processes; a run that fails
half-way leaves no file behind (and an older run's files as they were)."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import create_transform
from typer.testing import CliRunner

import explainvec.evaluation.explain_files as explain_files
from explainvec.cli.main import app
from explainvec.data.folder import open_rgb
from explainvec.evaluation.explain_files import explain_to_folder, image_items, read_explained
from explainvec.evaluation.heatmaps import upsample
from explainvec.models.checkpoint import save_checkpoint
from explainvec.models.self_explaining import Explanation, SelfExplainingViT
from tiny import make_checkpoint

COUNT = 10


@pytest.fixture(scope="module")
def checkpoint():
    return make_checkpoint()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Ten images of odd sizes in two class folders."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(COUNT):
        (root / "ab"[i % 2]).mkdir(exist_ok=True)
        pixels = rng.integers(0, 256, (30 + i, 41, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "ab"[i % 2] / f"{i}.png")
    return root


def expected_attributions(checkpoint, files) -> torch.Tensor:
    transform = create_transform(**checkpoint.meta.preprocess.timm_kwargs())
    images = torch.stack([transform(open_rgb(f)) for f in files])
    with torch.no_grad():
        return SelfExplainingViT.from_checkpoint(checkpoint).eval()(images).attributions


class Recorder:
    def __init__(self):
        self.totals, self.steps = [], 0

    def task(self, description, total, completed=0):
        self.totals.append(total)
        return self

    def advance(self, steps=1, description=None):
        self.steps += steps


@pytest.mark.parametrize(
    ("maps", "overlays", "workers"), [("npy", "none", 0), ("json", "topk", 0), ("npy", "top1", 2)]
)
def test_maps_read_back_as_the_model_gives_them_with_paths_and_classes(
    checkpoint, folder, tmp_path, monkeypatch, maps, overlays, workers
):
    def no_figures(*args, **kwargs):
        raise AssertionError("a matplotlib figure was made")

    monkeypatch.setattr(matplotlib.figure.Figure, "__init__", no_figures)
    inputs = image_items(checkpoint, [folder])
    files = sorted(folder.rglob("*.png"))
    model = SelfExplainingViT.from_checkpoint(checkpoint).eval()
    progress = Recorder()
    out = tmp_path / "out"
    explain_to_folder(
        model,
        checkpoint.meta.preprocess,
        inputs,
        out,
        overlays=overlays,
        maps=maps,
        batch_size=4,  # three batches, the last one short
        workers=workers,
        progress=progress,
    )

    explained = read_explained(out)
    assert explained.paths == [str(f) for f in files] and explained.class_names == ["a", "b", "c"]
    assert explained.attributions.dtype == np.float32 and explained.attributions.shape == (COUNT, 16, 3)
    torch.testing.assert_close(
        torch.from_numpy(np.array(explained.attributions)),
        expected_attributions(checkpoint, files),
        atol=1e-5,
        rtol=1e-5,
    )
    assert progress.totals == [COUNT] and progress.steps == COUNT
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ([] if overlays == "none" else sorted(f"{name}.png" for name in explained.names))
    assert (out / "attributions.npy").is_file() == (maps == "npy")
    assert not list(out.glob(".*"))  # no temporary file left
    for record in explained.index["images"]:
        assert record["predicted"] == next(iter(record["top_k"]))
        if record["image"] is not None:
            with Image.open(out / record["image"]) as png:
                assert np.asarray(png.convert("L")).std() > 10


def test_top1_draws_one_map_and_topk_three(checkpoint, folder, tmp_path):
    model = SelfExplainingViT.from_checkpoint(checkpoint).eval()
    widths = {}
    for overlays in ("top1", "topk"):
        out = tmp_path / overlays
        explain_to_folder(model, checkpoint.meta.preprocess, image_items(checkpoint, [folder]), out,
                          overlays=overlays, top_k=3)  # fmt: skip
        with Image.open(out / "000-0.png") as png:
            widths[overlays] = png.width
    assert widths["topk"] - widths["top1"] >= 2 * 128  # two more panels of at least 128 px


def failing_on(name: str):
    """A stand-in for ``compose_overlays`` that fails on the image ``name`` (module level, so that a
    forked overlay worker finds it)."""

    def compose(picture, heatmaps, titles, *, grid, suptitle="", mask=None):
        if suptitle.startswith(name):
            raise RuntimeError(f"drawing {name} failed")
        return Image.new("RGB", (8, 8))

    return compose


@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_that_fails_half_way_leaves_no_file(checkpoint, folder, tmp_path, monkeypatch, workers):
    model = save_checkpoint(tmp_path / "m.safetensors", checkpoint)
    monkeypatch.setattr(explain_files, "compose_overlays", failing_on("005-1"))  # the second batch
    out = tmp_path / "maps"
    args = ["explain", str(folder), "--model", str(model), "--out", str(out), "--batch-size", "4",
            "--workers", str(workers)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "drawing 005-1 failed" in result.output, result.output
    assert not out.exists()  # the PNGs of the first batch are removed, and the folder this run made

    out.mkdir()
    (out / "explanations.json").write_text("an older run")
    result = CliRunner().invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 1, result.output
    assert [p.name for p in out.iterdir()] == ["explanations.json"]
    assert (out / "explanations.json").read_text() == "an older run"


def test_a_failing_forward_leaves_no_maps(checkpoint, folder, tmp_path, monkeypatch):
    calls = []
    explain = explain_files.Stream.explain

    def second_batch_fails(self, positions, images, device):
        calls.append(len(positions))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return explain(self, positions, images, device)

    monkeypatch.setattr(explain_files.Stream, "explain", second_batch_fails)
    model = SelfExplainingViT.from_checkpoint(checkpoint).eval()
    with pytest.raises(KeyboardInterrupt):
        explain_to_folder(model, checkpoint.meta.preprocess, image_items(checkpoint, [folder]),
                          tmp_path / "out", batch_size=4, overlays="none")  # fmt: skip
    assert calls == [4, 4] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize(("grid", "size"), [((4, 4), 32), ((7, 7), 56), ((3, 5), 30)])
def test_overlay_workers_upsample_maps_as_the_explanation_does(grid, size, smooth):
    attributions = torch.randn(2, grid[0] * grid[1], 3)
    explanation = Explanation(torch.randn(2, 3), attributions, grid, size, list("abc"))
    maps = attributions[:, :, 1].reshape(2, *grid).numpy()
    np.testing.assert_allclose(
        upsample(maps, (size, size), smooth=smooth), explanation.heatmap(1, smooth=smooth).numpy(), atol=1e-6
    )
