"""Training the explainability vector itself: one τ that makes several source models self-explaining.

Instead of ``τ = θ_explain − θ_predict`` of one source, τ is the trainable parameter: for every source
prediction model ``θ_m`` (all fine-tuned from the same base), ``θ_m + τ`` is trained with its own
frozen head on ``CE + α · L_explain`` against ``θ_m``'s own class-token game (the head-agnostic
embedding game), one optimiser step per source model's batch in turn (the compute of one step on the
summed loss of all of them, with as many steps as batches). A τ that must work on several models at
once is pushed toward what they share, which is what a vector added to an unseen target model needs.

The embedding game needs no labels, so an adapter-only τ can play every source model's game on other
images than its training data (``game_data``); by default on the base's pretraining corpus, broader than
any one source, which covers more of what a target will show it.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader

from explainvec.models.adapter import ADAPTER, add_adapter
from explainvec.models.checkpoint import Checkpoint
from explainvec.models.masking import masked_tokens
from explainvec.models.records import ExplanationRecord
from explainvec.progress import SILENT, Tracker
from explainvec.training.config import TrainConfig
from explainvec.training.loop import Indexed, cosine_schedule
from explainvec.training.supervision import AmortisedGameLoss
from explainvec.vectors.explainability_vector import ExplainabilityVector, VectorMeta, backbone_parameters
from explainvec.vocabulary import AdapterKind

PRETRAINING = "pretraining"
"""``game_data``: the base's pretraining data where the base records it (made by ``explainvec pretrain``)
and τ is adapter-only; else each source's own training data."""

SHARED_COALITIONS = 48
"""Coalitions per image of the shared τ's bank (each drawn and evaluated once)."""

SHARED_LR = 2e-3
"""Learning rate of an adapter-only shared τ (``vector``, the demo)."""

SHARED_EPOCHS = 24
"""Epochs of a shared τ over each source's training images (``vector``, the demo)."""


def resolve_game_data(base: Checkpoint, game_data: str | None, backbone: bool) -> str | None:
    """The data every source model's game is played on (``None``: each source's own), or a ValueError
    for other images with a backbone τ (its cross-entropy needs each source's labels)."""
    if game_data == PRETRAINING:
        training = base.meta.training
        return training.data if not backbone and training.mode == "pretrain" else None
    if game_data is not None and backbone:
        raise ValueError("game data other than the sources' own needs an adapter-only τ (no --backbone)")
    return game_data


class _Objective(nn.Module):
    """``CE + explanation loss`` of one source model (the loss alone when ``classify`` is off: an
    adapter-only τ gets no gradient from CE); run under ``functional_call`` with ``θ_m + τ``, so every
    parameter the loss touches (the adapter's included) is the edited one."""

    def __init__(self, vit: nn.Module, loss: AmortisedGameLoss, classify: bool) -> None:
        super().__init__()
        self.vit, self.loss, self.classify = vit, loss, classify

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor, epoch: int
    ) -> torch.Tensor:
        tokens = masked_tokens(self.vit, images)
        explain = self.loss(self.vit, images, indices, tokens, epoch)
        return F.cross_entropy(self.vit.forward_head(tokens), labels) + explain if self.classify else explain


def train_shared_vector(
    base: Checkpoint,
    predicts: list[Checkpoint],
    config: TrainConfig,
    *,
    alpha: float = 0.05,
    num_coalitions: int = SHARED_COALITIONS,
    bank: bool = True,
    adapter: AdapterKind | None = None,
    backbone: bool = True,
    game_data: str | None = PRETRAINING,
    progress: Tracker = SILENT,
) -> ExplainabilityVector:
    """τ trained so that ``θ_m + τ`` explains for every source prediction model ``θ_m`` in ``predicts``.

    ``adapter`` adds the explanation adapter of that kind (its parameters join τ);
    ``backbone=False`` trains the adapter alone, so predictions cannot change. ``bank``: each source
    model's coalitions of an item are evaluated once and reused every epoch (``AmortisedGameLoss``).
    ``game_data``: the images (a data spec) every source model's game is played on, labels unused
    (``None``: each source's own training data; :data:`PRETRAINING`, the default: the base's pretraining
    data when it is known); other images than the sources' own only for an adapter-only τ (a backbone
    τ keeps each source model's accuracy with its labels)."""
    if not (adapter or backbone):
        raise ValueError("nothing to train: enable the adapter, the backbone, or both")
    game_data = resolve_game_data(base, game_data, backbone)
    if any(p.meta.base_fingerprint != base.meta.base_fingerprint for p in predicts):
        raise ValueError("every source model must be fine-tuned from this base (fingerprints differ)")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    datas = [p.meta.training.data for p in predicts]
    loaders = [
        DataLoader(
            Indexed(base.load_split(game_data or d, "train", size=config.train_size, seed=config.seed)),
            batch_size=config.batch_size,
            shuffle=True,
            generator=generator,
            drop_last=True,
        )
        for d in datas
    ]
    vits = [copy.deepcopy(p.model).eval().requires_grad_(False).to(config.device) for p in predicts]
    if adapter:
        for vit in vits:
            add_adapter(vit, adapter).requires_grad_(False)
    models = [
        _Objective(
            vit,
            AmortisedGameLoss(
                copy.deepcopy(p.model).to(config.device),
                output="embedding",
                num_coalitions=num_coalitions,
                alpha=alpha,
                seed=config.seed + i,
                bank=bank,
            ),
            classify=backbone,
        )
        for i, (vit, p) in enumerate(zip(vits, predicts, strict=True))
    ]
    frozen = [{f"vit.{n}": t for n, t in backbone_parameters(m.vit).items()} for m in models]
    trained = [n for n in frozen[0] if backbone or n.startswith(f"vit.{ADAPTER}.")]
    tau = {n: torch.zeros_like(frozen[0][n], requires_grad=True) for n in trained}
    optimizer = torch.optim.AdamW(tau.values(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * min(len(loader) for loader in loaders) * len(models)
    scheduler = cosine_schedule(optimizer, steps, int(config.warmup * steps))
    task = progress.task("training the shared vector", total=steps)
    iterators = [iter(loader) for loader in loaders]
    history: list[float] = []
    per_epoch = max(1, steps // config.epochs)
    for step in range(steps):
        i = step % len(models)
        try:
            indices, images, labels, _ = next(iterators[i])
        except StopIteration:
            iterators[i] = iter(loaders[i])
            indices, images, labels, _ = next(iterators[i])
        images, labels = images.to(config.device), labels.to(config.device)
        params = {n: frozen[i][n] + tau[n] for n in tau}
        arguments = (images, labels, indices.to(config.device), step // per_epoch)
        optimizer.zero_grad(set_to_none=True)
        loss = functional_call(models[i], params, arguments)
        loss.backward()
        optimizer.step()
        scheduler.step_update(step + 1)
        history.append(loss.item())
        task.advance()
    curve = [sum(history[i : i + per_epoch]) / per_epoch for i in range(0, steps, per_epoch)]
    tensors = {n.removeprefix("vit."): t.detach().cpu().clone() for n, t in tau.items()}
    meta = VectorMeta.of_base(
        base,
        source_data=datas,
        explanation=ExplanationRecord(
            readout="logit",
            supervision="embedding",
            alpha=alpha,
            coalitions=num_coalitions,
            coalition_bank=bank,
            recipe="shared",
            adapter=adapter or False,
            backbone=backbone,
            game_data=game_data,
        ),
        training={**config.model_dump(), "loss": curve},
    )
    return ExplainabilityVector(tensors, meta)
