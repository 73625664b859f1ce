"""The training loop every mode shares: AdamW, warm-up + cosine schedule (timm), patch dropping, progress,
data-parallel processes through Lightning Fabric, and a resumable state.

Every random draw is seeded by (seed, epoch) for the data order and by (seed, epoch, item) for patch
dropping and coalitions, so a run gives the same weights whether it ran in one process or several
(each takes a slice of every global batch) and whether or not it was killed and resumed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from lightning_fabric import Fabric
from timm.models.vision_transformer import VisionTransformer
from timm.scheduler import CosineLRScheduler
from torch import nn
from torch.utils.data import DataLoader, Dataset

from explainvec.models.masking import masked_tokens
from explainvec.models.vit import num_patches
from explainvec.progress import SILENT, Tracker
from explainvec.training.config import TrainConfig
from explainvec.training.engine import make_fabric
from explainvec.training.patch_drop import random_keep_masks
from explainvec.training.seeding import epoch_order, item_generator
from explainvec.training.state import load_state, save_state

ExtraLoss = Callable[[VisionTransformer, torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]
"""An added loss term ``(model, images, indices, tokens, epoch) -> scalar``, e.g. explanation supervision.

``indices`` are the items' positions in the dataset (label caches and per-item seeds use them);
``tokens`` the model's final-norm tokens of the full images, with gradient; ``epoch`` seeds its draws.
It must be a mean over the batch's items, like the cross-entropy it is added to.
"""


class Indexed(Dataset):
    """Items of ``data`` prefixed with their index (label caches are looked up by it)."""

    def __init__(self, data: Dataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        return index, *self.data[index]


def cosine_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, start: int = 0
) -> CosineLRScheduler:
    """timm's warm-up + cosine schedule of ``optimizer``'s learning rate, counted in optimizer updates.

    Linear warm-up from 0 over ``warmup_steps`` updates, then cosine decay from the optimizer's
    learning rate to 0 at update ``total_steps``. Call ``step_update(n)`` after the ``n``-th
    ``optimizer.step()``; it sets the learning rate of the next update. The learning rate is a function
    of the update count alone, so ``start`` (updates already done, when resuming) gives exactly the
    learning rate the uninterrupted run had at that update. The base learning rate is each param
    group's ``initial_lr`` (kept in the optimizer's state) or else its ``lr``.
    """
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=max(1, total_steps - warmup_steps),
        warmup_t=warmup_steps,
        warmup_prefix=True,
        t_in_epochs=False,
    )
    scheduler.step_update(start)
    return scheduler


def epoch_batches(size: int, batch_size: int, seed: int, epoch: int, world_size: int) -> list[torch.Tensor]:
    """The global batches of one epoch (a seeded permutation), the same for any number of processes: a
    last partial batch joins the one before it, so every item is used and every process gets at least
    one item of every batch (ValueError when a batch is smaller than ``world_size``)."""
    batches = list(epoch_order(size, seed, epoch).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches[-2:] = [torch.cat(batches[-2:])]
    smallest = min(len(b) for b in batches)
    if smallest < world_size:
        raise ValueError(f"a batch of {smallest} items cannot be shared by {world_size} processes")
    return batches


class _Step(nn.Module):
    """One training step's loss as a module, so that the whole computation runs inside the data-parallel
    wrapper's forward."""

    def __init__(self, model: VisionTransformer, extra_loss: ExtraLoss | None) -> None:
        super().__init__()
        self.model, self.extra_loss = model, extra_loss

    def forward(self, images, labels, indices, keep, epoch: int) -> torch.Tensor:
        tokens = masked_tokens(self.model, images, keep)
        loss = F.cross_entropy(self.model.forward_head(tokens), labels)
        if self.extra_loss is not None:
            full = tokens if keep is None else masked_tokens(self.model, images)
            loss = loss + self.extra_loss(self.model, images, indices, full, epoch)
        return loss


def fit(
    model: VisionTransformer,
    data: Dataset,
    config: TrainConfig,
    *,
    extra_loss: ExtraLoss | None = None,
    progress: Tracker = SILENT,
    description: str = "training",
    fabric: Fabric | None = None,
    state: Path | None = None,
    resume: bool = False,
) -> list[float]:
    """Train ``model`` in place with cross-entropy (+ ``extra_loss``); returns the mean loss of each epoch.

    ``fabric`` runs it data-parallel (default: one process on ``config.device``). With ``state``, a
    resumable state is written every ``config.save_every`` steps and at each epoch's end; ``resume``
    continues from it.
    """
    fabric = fabric or make_fabric(config)
    world, rank = fabric.world_size, fabric.global_rank
    torch.manual_seed(config.seed)
    if config.freeze_head:
        for p in model.get_classifier().parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = len(epoch_batches(len(data), config.batch_size, config.seed, 0, world))
    total = config.epochs * per_epoch
    step_module, optimizer = fabric.setup(_Step(model, extra_loss), optimizer)
    start, history, epoch_losses = 0, [], []
    if resume and state is not None and state.is_file():
        start, history, epoch_losses = load_state(state, model, optimizer)
    scheduler = cosine_schedule(optimizer, total, int(config.warmup * total), start=start)
    done = start
    task = progress.task(description, total=total, completed=start)
    players = num_patches(model)
    model.train()
    for epoch in range(start // per_epoch, config.epochs):
        batches = epoch_batches(len(data), config.batch_size, config.seed, epoch, world)
        skip = max(0, start - epoch * per_epoch)
        local = [b.tensor_split(world)[rank].tolist() for b in batches[skip:]]
        loader = DataLoader(Indexed(data), batch_sampler=local, num_workers=config.workers)
        for batch, (indices, images, labels, _masks) in zip(batches[skip:], loader, strict=True):
            keep = None
            if config.keep_min < 1:
                keep = torch.cat([
                    random_keep_masks(1, players, config.keep_min, item_generator(config.seed, epoch, int(i)))
                    for i in indices
                ])  # fmt: skip
                keep = fabric.to_device(keep)
            images, labels = fabric.to_device((images, labels))
            loss = step_module(images, labels, indices, keep, epoch) * (len(indices) * world / len(batch))
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(loss)
            optimizer.step()
            done += 1
            scheduler.step_update(done)
            step_loss = float(fabric.all_reduce(loss.detach(), reduce_op="mean"))
            epoch_losses.append(step_loss)
            if done % per_epoch == 0:
                history.append(sum(epoch_losses) / len(epoch_losses))
                epoch_losses = []
            if state is not None and (
                done % per_epoch == 0 or (config.save_every and done % config.save_every == 0)
            ):
                if fabric.is_global_zero:
                    save_state(state, model, optimizer, done, history, epoch_losses)
                fabric.barrier()
            task.advance(description=f"{description} loss {step_loss:.3f}")
    model.eval()
    return history
