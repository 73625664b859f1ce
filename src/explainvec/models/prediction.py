"""Predictions and top-1 accuracy of a classifier on a dataset."""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer
from torch.utils.data import DataLoader, Dataset

from explainvec.progress import SILENT, Tracker


@torch.no_grad()
def predict_logits(
    model: VisionTransformer,
    data: Dataset,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: Tracker = SILENT,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``[N, C]`` and labels ``[N]`` of every item of ``data``."""
    model.to(device).eval()
    loader = DataLoader(data, batch_size=batch_size)
    task = progress.task("predicting", total=len(loader))
    logits, labels = [], []
    for images, y, _ in loader:
        logits.append(model(images.to(device)).cpu())
        labels.append(y)
        task.advance()
    return torch.cat(logits), torch.cat(labels)


def top1_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows whose largest logit is the label."""
    return (logits.argmax(dim=1) == labels).float().mean().item()
