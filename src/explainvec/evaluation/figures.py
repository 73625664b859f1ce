"""The report's figures: the λ curve, the Kernel SHAP budget curve, and a grid of example heatmaps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm

from explainvec.io import atomic_write


def _save(fig, path: str | Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    plt.close(fig)
    return Path(path)


def plot_lambda_curve(
    curve: list[dict], chosen: float | None, path: str | Path, criterion: str | None = None
) -> Path:
    """Agreement with the unedited model and the criterion's score against λ, the chosen λ marked (curves
    written before ``score`` existed are scored by insertion − deletion)."""
    lams = [p["lam"] for p in curve]
    scores = [p.get("score", p.get("insertion", 0.0) - p.get("deletion", 0.0)) for p in curve]
    label = "fit to the target's masked outputs, R²" if criterion == "shapley_fit" else "insertion − deletion"
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(lams, [p["agreement"] for p in curve], "o-", label="agreement with λ = 0")
    ax.plot(lams, scores, "s-", label=label)
    if chosen is not None:
        ax.axvline(chosen, color="grey", linestyle="--", linewidth=1, label=f"chosen λ = {chosen:g}")
    ax.set_xlabel("λ")
    ax.set_ylim(min(0.0, *scores) - 0.02, 1.02)
    ax.set_title("λ curve (unlabelled held-out images)", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_budget_curve(curve: list[dict], single_pass: dict[str, dict[str, float]], path: str | Path) -> Path:
    """Kernel SHAP quality against its budget (log scale), each single-pass method as a horizontal line."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    budgets = [p["budget"] for p in curve]
    for ax, metric, label in zip(
        axes,
        ("pearson", "insertion_minus_deletion"),
        ("Pearson with reference", "insertion − deletion"),
        strict=True,
    ):
        ax.plot(budgets, [p[metric] for p in curve], "o-", color="black", label="Kernel SHAP")
        for (name, values), colour in zip(single_pass.items(), plt.cm.tab10.colors, strict=False):
            ax.axhline(values[metric], color=colour, linestyle="--", label=f"{name} (1 pass)")
        ax.set_xscale("log")
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_xlabel("model evaluations per image")
        ax.set_title(label, fontsize=10)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def plot_method_grid(
    pictures: list[np.ndarray],
    masks: list[np.ndarray] | None,
    maps: dict[str, np.ndarray],
    grid: tuple[int, int],
    path: str | Path,
) -> Path:
    """Rows: images; columns: the image, its mask, then each method's map ``[B, P]`` of the predicted
    class, each map on its own symmetric colour scale (red for, blue against)."""
    columns = 1 + (masks is not None) + len(maps)
    fig, axes = plt.subplots(
        len(pictures), columns, figsize=(1.7 * columns, 1.7 * len(pictures)), squeeze=False
    )
    for row, picture in enumerate(pictures):
        cells = [("image", picture, {})]
        if masks is not None:
            cells.append(("mask", masks[row], {"cmap": "gray", "vmin": 0, "vmax": 1}))
        for name, values in maps.items():
            heat = values[row].reshape(grid)
            limit = max(float(np.abs(heat).max()), 1e-8)
            cells.append((name, heat, {"cmap": "RdBu_r", "norm": TwoSlopeNorm(0.0, -limit, limit)}))
        for ax, (title, image, style) in zip(axes[row], cells, strict=True):
            ax.imshow(image, interpolation="nearest", **style)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8)
    return _save(fig, path)
