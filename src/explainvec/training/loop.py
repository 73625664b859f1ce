"""The training loop every mode shares: AdamW, warm-up + cosine schedule, patch dropping, progress."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from rich.progress import Progress
from timm.models.vision_transformer import VisionTransformer
from torch.utils.data import DataLoader, Dataset

from explainvec.models.masking import masked_tokens
from explainvec.models.vit import num_patches
from explainvec.training.config import TrainConfig
from explainvec.training.patch_drop import random_keep_masks

ExtraLoss = Callable[[VisionTransformer, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""An added loss term ``(model, images, indices, tokens) -> scalar``, e.g. explanation supervision.

``indices`` are the items' positions in the dataset; ``tokens`` the model's final-norm tokens of the
full images, with gradient (shared with the classification loss when no patches are dropped).
"""


class Indexed(Dataset):
    """Items of ``data`` prefixed with their index (label caches are looked up by it)."""

    def __init__(self, data: Dataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        return index, *self.data[index]


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up over ``warmup`` steps, then cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def fit(
    model: VisionTransformer,
    data: Dataset,
    config: TrainConfig,
    *,
    extra_loss: ExtraLoss | None = None,
    progress: Progress | None = None,
    description: str = "training",
) -> list[float]:
    """Train ``model`` in place with cross-entropy (+ ``extra_loss``); returns the mean loss of each epoch."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(
        Indexed(data), batch_size=config.batch_size, shuffle=True, generator=generator, drop_last=False
    )
    if config.freeze_head:
        for p in model.get_classifier().parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    total = config.epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, int(config.warmup * total))
    )
    task = progress.add_task(description, total=total) if progress else None
    players = num_patches(model)
    history = []
    model.to(config.device).train()
    for _ in range(config.epochs):
        losses = []
        for indices, images, labels, _masks in loader:
            images, labels = images.to(config.device), labels.to(config.device)
            keep = None
            if config.keep_min < 1:
                keep = random_keep_masks(len(images), players, config.keep_min, generator).to(config.device)
            tokens = masked_tokens(model, images, keep)
            loss = F.cross_entropy(model.forward_head(tokens), labels)
            if extra_loss is not None:
                full = tokens if keep is None else masked_tokens(model, images)
                loss = loss + extra_loss(model, images, indices, full)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if progress is not None:
                progress.update(task, advance=1, description=f"{description} loss {loss.item():.3f}")
        history.append(sum(losses) / len(losses))
    model.eval()
    return history
