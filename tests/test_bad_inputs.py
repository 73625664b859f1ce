"""Every bad input of issue 17 through the command line, as one table: case → command → message.

Each row checks exit status 2, exactly one ``error:`` line naming the file or option, no traceback, and
that no file in the working folder was created, changed or left half-written.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import explainvec.io
from explainvec.cli.main import app
from explainvec.io import LOCK
from explainvec.models.checkpoint import Checkpoint, save_checkpoint, sidecar_path
from explainvec.vectors import ExplainabilityVector
from tiny import make_checkpoint

M, E, TAU, NEW = "m.safetensors", "e.safetensors", "tau.safetensors", "new.safetensors"
Setup = Callable[[Path], None]


def edit_sidecar(name: str, change: Callable[[dict], None]) -> Setup:
    """A setup that changes the JSON sidecar of ``name``."""

    def setup(folder: Path) -> None:
        side = sidecar_path(folder / name)
        data = json.loads(side.read_text())
        change(data)
        side.write_text(json.dumps(data))

    return setup


def edit_tensors(name: str, change: Callable[[dict], None]) -> Setup:
    """A setup that changes the tensors of ``name`` behind the library's back, keeping its header metadata
    (so the only problem is the one ``change`` makes)."""

    def setup(folder: Path) -> None:
        path = folder / name
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata()
        tensors = load_file(str(path))
        change(tensors)
        save_file(tensors, str(path), metadata=metadata)

    return setup


def put(key: str, value) -> Callable[[dict], None]:
    """Set ``data[a][b]…`` for the dotted ``key``."""

    def change(data: dict) -> None:
        *parents, last = key.split(".")
        for parent in parents:
            data = data[parent]
        data[last] = value

    return change


def tensor(name: str, value: torch.Tensor) -> Callable[[dict], None]:
    """Set tensor ``name`` (dots are part of tensor names)."""
    return lambda tensors: tensors.__setitem__(name, value)


def scaled(factor: float) -> Callable[[dict], None]:
    def change(tensors: dict) -> None:
        for name in tensors:
            tensors[name] = tensors[name] * factor

    return change


def write(name: str, content: bytes | Callable[[Path], bytes]) -> Setup:
    def setup(folder: Path) -> None:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content(folder) if callable(content) else content)

    return setup


def pickle_bytes(_: Path) -> bytes:
    with tempfile.TemporaryDirectory() as scratch:
        torch.save({"weight": torch.zeros(2)}, Path(scratch) / "p.pt")
        return (Path(scratch) / "p.pt").read_bytes()


def broken_image_not_utf8(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (folder / "data" / name).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                folder / "data" / name / f"{i}.png"
            )
    Path(os.fsdecode(bytes(folder / "data" / "a") + b"/bad\xff.png")).write_bytes(b"not an image")


def read_only(folder: Path) -> None:
    (folder / "ro").mkdir()
    (folder / "ro").chmod(0o555)


def refuse_writes_in_read_only_folders(monkeypatch) -> None:
    """What a user without write permission meets, also when the tests run as root (who has it anyway)."""
    mkstemp = tempfile.mkstemp

    def denied(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).name == "ro":
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(explainvec.io.tempfile, "mkstemp", denied)


@dataclass
class Case:
    command: Callable[[Path], list]
    message: str
    setup: Setup | None = None


def apply(model: str = M, vector: str = TAU, out: str = NEW, *extra) -> Callable[[Path], list]:
    return lambda d: ["apply", "--model", d / model, "--vector", d / vector, "--out", d / out, *extra]


def explain(*extra) -> Callable[[Path], list]:
    return lambda d: ["explain", "--model", d / M, "--data", "synthetic:geo", "--count", 2, *extra]


CASES = {
    # 1. outputs never replace an input or an existing file
    "apply --out is --model": Case(apply(out=M), f"--out {{d}}/{M} is also an input"),
    "apply --out is --model, even with --overwrite": Case(
        apply(M, TAU, M, "--overwrite"), f"--out {{d}}/{M} is also an input"
    ),
    "apply --out is --vector": Case(apply(out=TAU), f"--out {{d}}/{TAU} is also an input"),
    "apply --out exists": Case(
        apply(out=E), f"--out {{d}}/{E} exists: refusing to replace it (add --overwrite"
    ),
    "apply --out's sidecar exists": Case(
        apply(out=NEW), "--out {d}/new.json exists", write("new.json", b"{}")
    ),
    "train --out exists": Case(
        lambda d: ["train", "--base", d / M, "--data", "synthetic:geo", "--out", d / E],
        f"--out {{d}}/{E} exists",
    ),
    "train --out is --base": Case(
        lambda d: ["train", "--base", d / M, "--data", "synthetic:geo", "--out", d / M, "--overwrite"],
        f"--out {{d}}/{M} is also an input",
    ),
    "vector --out exists": Case(
        lambda d: ["vector", "--explain", d / E, "--predict", d / M, "--out", d / TAU],
        f"--out {{d}}/{TAU} exists",
    ),
    "vector --out is --explain": Case(
        lambda d: ["vector", "--explain", d / E, "--predict", d / M, "--out", d / E, "--overwrite"],
        f"--out {{d}}/{E} is also an input",
    ),
    "labels --out is a file": Case(
        lambda d: ["labels", "--value-model", d / M, "--data", "synthetic:geo", "--out", d / M],
        f"--out {{d}}/{M} is a file, not a folder",
    ),
    "labels --out holds something else": Case(
        lambda d: ["labels", "--value-model", d / M, "--data", "synthetic:geo", "--out", d / "other"],
        "--out {d}/other holds files but no meta.json",
        write("other/notes.txt", b"mine"),
    ),
    "pretrain --out exists": Case(lambda d: ["pretrain", "--out", d / E], f"{{d}}/{E} exists"),
    "import --out exists": Case(
        lambda d: ["import", "timm:vit_tiny_patch16_224", "--weights", d / M, "--out", d / E],
        f"--out {{d}}/{E} exists",
    ),
    # 2. outputs are finite before they are written or reported
    "apply --lam 1e30": Case(
        apply(M, TAU, NEW, "--lam", "1e30"),
        f"refusing to write {{d}}/{NEW}: the model's outputs on a probe image",
    ),
    "apply --lam nan": Case(apply(M, TAU, NEW, "--lam", "nan"), "--lam must be a finite number, got nan"),
    "apply a τ scaled by 1e30": Case(
        apply(), f"refusing to write {{d}}/{NEW}: the model's outputs", edit_tensors(TAU, scaled(1e30))
    ),
    "explain a model whose outputs overflow": Case(
        explain("--out", "{d}/maps"), "the model's output for image geo-000", edit_tensors(M, scaled(1e30))
    ),
    "evaluate a model whose outputs overflow": Case(
        lambda d: ["evaluate", "--model", d / M, "--data", "synthetic:geo", "--out", d / "rep"],
        f"refusing to evaluate {{d}}/{M}: the model's outputs on a probe image hold NaN or Inf",
        edit_tensors(M, scaled(1e30)),
    ),
    # 3. two explain runs into one folder
    "explain into a folder another run holds": Case(
        explain("--out", "{d}/maps"),
        "--out {d}/maps is held by another explainvec run",
        write(f"maps/{LOCK}", b""),
    ),
    "explain into a folder holding another run's results": Case(
        explain("--out", "{d}/maps"),
        "--out {d}/maps already holds files",
        write("maps/explanations.json", b"{}"),
    ),
    "evaluate into a folder holding results": Case(
        lambda d: ["evaluate", "--model", d / M, "--data", "synthetic:geo", "--out", d / "rep"],
        "--out {d}/rep already holds files",
        write("rep/report.json", b"{}"),
    ),
    # 4. checkpoints and vectors are validated as a whole
    "sidecar depth 'four'": Case(
        apply(),
        "m.json is not valid: field architecture.depth",
        edit_sidecar(M, put("architecture.depth", "four")),
    ),
    "sidecar patch_size against the tensors": Case(
        apply(),
        f"{{d}}/{M}: tensor 'patch_embed.proj.weight' has shape [32, 3, 8, 8], but field architecture",
        edit_sidecar(M, put("architecture.patch_size", 16)),
    ),
    "fewer class names than outputs": Case(
        apply(),
        "m.json: field class_names has 2 names for a head with 3 outputs",
        edit_sidecar(M, put("class_names", ["a", "b"])),
    ),
    "more class names than outputs": Case(
        apply(), "m.json: field class_names has 4 names", edit_sidecar(M, put("class_names", list("abcd")))
    ),
    "checkpoint format 99": Case(
        apply(),
        "m.json is not valid: field format",
        edit_sidecar(M, put("format", "explainvec-checkpoint/99")),
    ),
    "preprocess size against the model": Case(
        apply(),
        "m.json: field preprocess.image_size is 64",
        edit_sidecar(M, put("preprocess.image_size", 64)),
    ),
    "missing tensor": Case(
        apply(), f"{{d}}/{M}: tensor 'norm.bias' is missing", edit_tensors(M, lambda t: t.pop("norm.bias"))
    ),
    "extra tensor": Case(
        apply(),
        f"{{d}}/{M}: tensor 'extra' is not part of the model",
        edit_tensors(M, tensor("extra", torch.zeros(2))),
    ),
    "wrong-shaped tensor": Case(
        apply(),
        f"{{d}}/{M}: tensor 'head.bias' has shape [4]",
        edit_tensors(M, tensor("head.bias", torch.zeros(4))),
    ),
    "weights and sidecar not written together": Case(
        apply(),
        f"{{d}}/{M} and {{d}}/m.json were not written together",
        edit_sidecar(M, put("weights_id", "0" * 32)),
    ),
    "vector: wrong-shaped tensor": Case(
        apply(),
        f"{{d}}/{TAU}: tensor 'pos_embed' has shape [1, 5, 32]",
        edit_tensors(TAU, tensor("pos_embed", torch.zeros(1, 5, 32))),
    ),
    "vector: extra tensor": Case(
        apply(),
        f"{{d}}/{TAU}: tensor 'head.weight' is not part of the model",
        edit_tensors(TAU, tensor("head.weight", torch.zeros(3, 32))),
    ),
    "vector: missing tensor": Case(
        apply(),
        f"{{d}}/{TAU}: tensor 'norm.weight' is missing",
        edit_tensors(TAU, lambda t: t.pop("norm.weight")),
    ),
    "vector: format 99": Case(
        apply(),
        "tau.json is not valid: field format",
        edit_sidecar(TAU, put("format", "explainvec-vector/99")),
    ),
    "a checkpoint given as τ": Case(apply(vector=E), f"{{d}}/{E} is not an explainability vector"),
    # 5. one line instead of a traceback
    "a broken image whose name is not UTF-8": Case(
        lambda d: ["train", "--base", d / M, "--data", d / "data", "--out", d / NEW],
        "cannot read image {d}/data/a/bad\\xff.png",
        broken_image_not_utf8,
    ),
    "permission denied on --out": Case(
        apply(out=f"ro/{NEW}"), f"cannot write {{d}}/ro/{NEW}: permission denied", read_only
    ),
    "domains --export --to a file": Case(
        lambda d: ["domains", "--export", "geo", "--to", d / M], f"--to {{d}}/{M} is a file, not a folder"
    ),
    "explain --top-k 0": Case(
        explain("--out", "{d}/maps", "--top-k", 0), "--top-k must be at least 1 (got 0)"
    ),
    "explain --count -1": Case(
        lambda d: [
            "explain",
            "--model",
            d / M,
            "--data",
            "synthetic:geo",
            "--count",
            -1,
            "--out",
            d / "maps",
        ],
        "--count must be at least 1 (got -1)",
    ),
    "import a pickle named .safetensors": Case(
        lambda d: ["import", "timm:vit_tiny_patch16_224", "--weights", d / "w.safetensors", "--out", d / NEW],
        "weights {d}/w.safetensors is named .safetensors but holds a PyTorch pickle",
        write("w.safetensors", pickle_bytes),
    ),
    "import safetensors named .pt": Case(
        lambda d: ["import", "timm:vit_tiny_patch16_224", "--weights", d / "w.pt", "--out", d / NEW],
        "weights {d}/w.pt holds safetensors but is named .pt: rename it .safetensors",
        write("w.pt", lambda d: (d / M).read_bytes()),
    ),
    "a pickle named .safetensors as --model": Case(
        apply(model="p.safetensors"),
        "{d}/p.safetensors is not a safetensors file but a PyTorch pickle",
        lambda d: (write("p.safetensors", pickle_bytes)(d), shutil.copy(d / "m.json", d / "p.json")),
    ),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A predict model m, a self-explaining stand-in e (m nudged) and τ = e − m, all tiny."""
    folder = tmp_path_factory.mktemp("template")
    predict = make_checkpoint()
    nudged = copy.deepcopy(predict.model)
    with torch.no_grad():
        for p in nudged.parameters():
            p.add_(0.01 * torch.randn_like(p))
    explain = Checkpoint(nudged, predict.meta.model_copy(update={"kind": "explain"}))
    save_checkpoint(folder / M, predict)
    save_checkpoint(folder / E, explain)
    ExplainabilityVector.from_checkpoints(explain, predict).save(folder / TAU)
    return folder


def snapshot(folder: Path) -> dict[bytes, bytes | None]:
    """Every file and folder under ``folder`` with its bytes (None for a folder)."""
    return {
        bytes(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case, template, tmp_path, monkeypatch):
    folder = tmp_path / "work"
    shutil.copytree(template, folder)
    if case.setup is not None:
        case.setup(folder)
    refuse_writes_in_read_only_folders(monkeypatch)
    args = [str(a).replace("{d}", str(folder)) for a in case.command(folder)]
    before = snapshot(folder)

    result = CliRunner().invoke(app, args, catch_exceptions=False)

    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 2, result.output
    [line] = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("error: "), line
    assert case.message.replace("{d}", str(folder)) in line, line
    assert snapshot(folder) == before
