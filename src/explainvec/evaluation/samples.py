"""A picture of what a domain looks like: sample images above their class-evidence masks."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from explainvec.data.preprocess import Preprocess
from explainvec.data.sources import load_data
from explainvec.io import atomic_write

SAMPLES = 8


def plot_domain_samples(
    specs: list[str], preprocess: Preprocess, path: str | Path, patch_size: int = 8
) -> Path:
    """Write a PNG with ``SAMPLES`` test images and evidence masks of each embedded data source in ``specs``
    (``synthetic:<domain>`` or ``fashion:<subset>``)."""
    fig, axes = plt.subplots(
        2 * len(specs), SAMPLES, figsize=(SAMPLES * 1.1, 2.4 * len(specs)), squeeze=False
    )
    for row, spec in enumerate(specs):
        data = load_data(spec, "test", size=SAMPLES, preprocess=preprocess, patch_size=patch_size)
        for col in range(SAMPLES):
            image_ax, mask_ax = axes[2 * row, col], axes[2 * row + 1, col]
            image_ax.imshow(data.pixels[col].permute(1, 2, 0).numpy())
            image_ax.set_title(data.class_names[data.labels[col]], fontsize=8)
            mask_ax.imshow(data.masks[col].numpy(), cmap="gray", vmin=0, vmax=1)
            for ax in (image_ax, mask_ax):
                ax.set_xticks([])
                ax.set_yticks([])
        axes[2 * row, 0].set_ylabel(spec.split(":", 1)[1], fontsize=9)
        axes[2 * row + 1, 0].set_ylabel("mask", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return Path(path)
