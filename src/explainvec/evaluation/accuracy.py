"""Predictions and top-1 accuracy of a classifier on a dataset."""

from __future__ import annotations

import torch
from rich.progress import Progress
from timm.models.vision_transformer import VisionTransformer
from torch.utils.data import DataLoader, Dataset


@torch.no_grad()
def predict_logits(
    model: VisionTransformer,
    data: Dataset,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``[N, C]`` and labels ``[N]`` of every item of ``data``."""
    model.to(device).eval()
    loader = DataLoader(data, batch_size=batch_size)
    task = progress.add_task("predicting", total=len(loader)) if progress else None
    logits, labels = [], []
    for images, y, _ in loader:
        logits.append(model(images.to(device)).cpu())
        labels.append(y)
        if progress is not None:
            progress.advance(task)
    return torch.cat(logits), torch.cat(labels)


def top1_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows whose largest logit is the label."""
    return (logits.argmax(dim=1) == labels).float().mean().item()
