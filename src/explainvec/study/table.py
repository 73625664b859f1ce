"""The table of a study: every row's mean over bases, target seeds and images with its 95 % interval, and
paired differences with the free baselines (λ = 0 and attention rollout)."""

from __future__ import annotations

import math

import numpy as np

from explainvec.evaluation.evaluate import PAIRED_AGAINST
from explainvec.evaluation.paired import Interval, cluster_interval


def _bases(results: dict) -> dict[str, list[str]]:
    """Cell names grouped by base (``b<base>-s<seed>``)."""
    groups: dict[str, list[str]] = {}
    for cell in results["cells"]:
        groups.setdefault(cell.split("-")[0], []).append(cell)
    return groups


def row_names(results: dict) -> list[str]:
    names: list[str] = []
    for cell in results["cells"].values():
        names += [n for n in cell if n not in names]
    return names


def row_interval(results: dict, row: str, metric: str, against: str | None = None) -> Interval | None:
    """``metric`` of ``row`` (minus ``against``'s on the same images) over every cell that has both."""
    groups = []
    for cells in _bases(results).values():
        values = []
        for name in cells:
            cell = results["cells"][name]
            if row not in cell or (against and against not in cell):
                continue
            value = np.asarray(cell[row]["per_image"][metric])
            values.append(value - np.asarray(cell[against]["per_image"][metric]) if against else value)
        if values:
            groups.append(np.concatenate(values))
    return cluster_interval(groups) if groups else None


def _mean(results: dict, row: str, field: str) -> float:
    values = [
        cell[row][field]
        for cell in results["cells"].values()
        if row in cell and cell[row].get(field) is not None
    ]
    return float(np.mean(values)) if values else math.nan


def study_table(results: dict) -> str:
    """A markdown table of every row of ``results`` (see :func:`explainvec.study.run_study`)."""
    oracle = row_interval(results, "oracle", "insertion_minus_deletion")
    paired = [a for a in PAIRED_AGAINST if a in row_names(results)]
    lines = [
        "| row | λ per cell | accuracy | agreement | Pearson | ins − del (share of oracle) | "
        + " | ".join(f"Δ ins − del vs {a} | Δ Pearson vs {a}" for a in paired)
        + " | cost of τ |",
        "|---|---|---|---|---|---|" + "---|---|" * len(paired) + "---|",
    ]
    for row in row_names(results):
        lams = [cell[row].get("lambda") for cell in results["cells"].values() if row in cell]
        lam = "—" if all(v is None for v in lams) else " ".join(f"{v:g}" for v in lams)
        gap = row_interval(results, row, "insertion_minus_deletion")
        share = f" ({gap.mean / oracle.mean:.0%})" if oracle and oracle.mean > 0 else ""
        cells = [
            row,
            lam,
            f"{_mean(results, row, 'accuracy'):.3f}",
            f"{_mean(results, row, 'agreement'):.3f}",
            str(row_interval(results, row, "pearson")),
            f"{gap}{share}",
        ]
        for against in paired:
            for metric in ("insertion_minus_deletion", "pearson"):
                diff = None if row == against else row_interval(results, row, metric, against)
                cells.append("—" if diff is None else f"{diff}{' ✓' if diff.above_zero else ''}")
        cost = _mean(results, row, "cost")
        cells.append("—" if math.isnan(cost) else f"{cost:.1f}×")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
