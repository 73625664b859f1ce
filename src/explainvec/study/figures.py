"""A study's figures: the λ curve of every recipe, and transfer against the target's fine-tuning distance."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from explainvec.evaluation.paired import cluster_interval
from explainvec.io import atomic_write
from explainvec.study.distance import FREE_ROWS


def study_figures(results: dict, stem: Path) -> list[Path]:
    """Every figure the results allow, written as ``<stem>-lambda.png`` and ``<stem>-distance.png``."""
    figures = [
        plot_lambda_curves(results, stem.with_name(stem.name + "-lambda.png")),
        plot_distance_curve(results, stem.with_name(stem.name + "-distance.png")),
    ]
    return [f for f in figures if f is not None]


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    plt.close(fig)
    return path


def plot_lambda_curves(results: dict, path: str | Path) -> Path | None:
    """Per recipe, the λ search's insertion − deletion and agreement on unlabelled target images, mean over
    cells (thin lines: each cell); ``None`` when no row has a curve."""
    curves: dict[str, list[list[dict]]] = {}
    for cell in results["cells"].values():
        for row, values in cell.items():
            if values.get("curve"):
                curves.setdefault(row, []).append(values["curve"])
    if not curves:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for (row, cells), colour in zip(curves.items(), plt.cm.tab10.colors, strict=False):
        for ax, field in zip(axes, ("score", "agreement"), strict=True):
            for curve in cells:
                ax.plot([p["lam"] for p in curve], [_score(p, field) for p in curve], color=colour, alpha=0.2)
            lams = [p["lam"] for p in cells[0]]
            mean = np.mean([[_score(p, field) for p in curve] for curve in cells], axis=0)
            ax.plot(lams, mean, "o-", color=colour, label=row)
    axes[0].set_ylabel("label-free score (λ search)")
    axes[1].set_ylabel("agreement with λ = 0")
    for ax in axes:
        ax.set_xlabel("λ")
    axes[0].legend(fontsize=7)
    fig.suptitle("λ curves on unlabelled target val images (thin: each base × seed)", fontsize=10)
    return _save(fig, Path(path))


def _score(point: dict, field: str) -> float:
    if field == "agreement":
        return point["agreement"]
    return point.get("score", point.get("insertion", 0.0) - point.get("deletion", 0.0))


def plot_distance_curve(results: dict, path: str | Path) -> Path | None:
    """Insertion − deletion (mean and 95 % interval over bases and images) of each row against the
    target fine-tune's learning rate × epochs; ``None`` without distance results."""
    distances = results.get("distances") or {}
    if not distances:
        return None
    settings = {d["lr"] * d["epochs"]: f"lr{d['lr']:g}-e{d['epochs']}" for d in results["study"]["distances"]}
    settings = {x: name for x, name in sorted(settings.items()) if name in distances}
    rows = list(dict.fromkeys(r for by_base in distances.values() for rs in by_base.values() for r in rs))
    rows = [*[r for r in FREE_ROWS if r in rows], *[r for r in rows if r not in FREE_ROWS]]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for row, colour in zip(rows, plt.cm.tab10.colors, strict=False):
        xs, intervals = [], []
        for x, name in settings.items():
            groups = [rs[row]["insertion_minus_deletion"] for rs in distances[name].values() if row in rs]
            if groups:
                xs.append(x)
                intervals.append(cluster_interval(groups))
        if xs:
            means = [i.mean for i in intervals]
            ax.plot(xs, means, "o-", color=colour, label=row)
            ax.fill_between(
                xs, [i.low for i in intervals], [i.high for i in intervals], color=colour, alpha=0.15
            )
    ax.set_xscale("log")
    ax.set_xticks(list(settings), [name.replace("-", ", ") for name in settings.values()])
    ax.minorticks_off()
    ax.set_xlabel("target fine-tune: learning rate × epochs")
    ax.set_ylabel("insertion − deletion")
    ax.legend(fontsize=7)
    ax.set_title("transfer against fine-tuning distance (95 % over bases, images)", fontsize=10)
    return _save(fig, Path(path))
