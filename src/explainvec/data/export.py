"""Writing an embedded domain out as an image folder (PNG images and evidence masks) to use like real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from explainvec.data.preprocess import Preprocess
from explainvec.data.synthetic import SPLITS, SyntheticDataset
from explainvec.progress import SILENT, Tracker


def export_domain(
    domain: str,
    root: str | Path,
    *,
    sizes: dict[str, int],
    image_size: int = 32,
    patch_size: int = 8,
    seed: int = 0,
    progress: Tracker = SILENT,
) -> Path:
    """Write ``root/<split>/<class>/<i>.png`` and ``root/masks/<split>/<class>/<i>.png`` for each split."""
    root = Path(root)
    for split in SPLITS:
        preprocess = Preprocess(image_size=image_size)
        data = SyntheticDataset(
            domain, split, size=sizes[split], preprocess=preprocess, patch_size=patch_size, seed=seed
        )
        task = progress.task(f"export {domain} {split}", total=len(data))
        for i in range(len(data)):
            name = data.class_names[data.labels[i]]
            image = data.pixels[i].permute(1, 2, 0).numpy()
            mask = data.masks[i].numpy().astype(np.uint8) * 255
            for folder, pixels in ((root / split / name, image), (root / "masks" / split / name, mask)):
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(folder / f"{i:05d}.png")
            task.advance()
    return root
