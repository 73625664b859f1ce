"""The package as users get it: the sdist and the wheel built from it, the wheel installed into a fresh
environment, and the command line run from there (``make test-slow``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
VERSION = version("explainvec")  # this checkout's, as pyproject.toml says

pytestmark = pytest.mark.slow


def run(*args, **kwargs) -> str:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


def test_the_wheel_installs_into_a_fresh_environment_and_runs(tmp_path):
    dist = tmp_path / "dist"
    # no flags: the sdist first, then the wheel built from the unpacked sdist (so the sdist is complete)
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ROOT)
    (sdist,), (wheel,) = dist.glob("*.tar.gz"), dist.glob("*.whl")
    assert sdist.name == f"explainvec-{VERSION}.tar.gz" and wheel.name.startswith(f"explainvec-{VERSION}-")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        "src/explainvec/evaluation/templates/report.html.j2",
    } <= names
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"explainvec-{VERSION}.dist-info/METADATA").decode()
    assert f"explainvec-{VERSION}.dist-info/licenses/LICENSE" in names
    assert "explainvec/evaluation/templates/report.html.j2" in names
    assert "License-Expression: Apache-2.0" in metadata and "Requires-Dist: transformers" in metadata

    env = tmp_path / "env"
    run(sys.executable, "-m", "venv", "--without-pip", env)  # this environment's pip installs into it
    python, explainvec = env / "bin" / "python", env / "bin" / "explainvec"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    # the dependencies come from this environment (a path, so its editable explainvec is not seen): offline
    (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = (sys.executable, "-m", "pip", "--python", python)
    run(*pip, "install", "--quiet", "--no-deps", "--no-index", wheel)
    run(*pip, "check")  # every requirement of the wheel is met
    where = json.loads(
        run(
            python,
            "-c",
            "import explainvec, json; print(json.dumps([explainvec.__file__, explainvec.__version__]))",
        )
    )
    assert Path(where[0]).is_relative_to(purelib) and where[1] == VERSION

    assert "import" in run(explainvec, "--help") and "demo" in run(explainvec, "--help")
    cache = {**os.environ, "EXPLAINVEC_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    run(
        explainvec,
        "pretrain",
        "--preset",
        "4x4",
        "--out",
        tmp_path / "base.safetensors",
        env=cache,
        cwd=tmp_path,
    )
    sidecar = json.loads((tmp_path / "base.json").read_text())
    assert sidecar["kind"] == "base" and sidecar["metrics"]
