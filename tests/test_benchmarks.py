"""The benchmark script's cases run (on a tiny batch) and time every side they compare."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmarks_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("case", "k", "sides"),
    [
        ("P1", 0, {"A", "B"}),
        ("P1-contributions", 0, {"A", "B"}),
        ("P1-stream", 0, {"A", "B"}),
        ("P2", 0, {"A", "A unpacked", "B"}),
        ("P3", 0, {"A", "A unpacked", "B"}),
        ("P4", 8, {"A", "A unpacked", "B"}),
        ("P4-labels", 0, {"A", "B"}),
        ("explain", 0, {"A", "B"}),
        ("explain-top1", 0, {"A", "B"}),
        ("P4-bank", 4, {"A", "A unpacked", "B"}),
        ("P4-fresh", 4, {"A", "A unpacked", "B"}),
    ],
)
def test_every_case_times_its_sides(bench, case, k, sides):
    times = bench.timing_case(case, "4x4", 2, "cpu", 2, k, None)
    assert set(times) == sides
    assert all(len(t) == 2 and min(t) > 0 for t in times.values())
