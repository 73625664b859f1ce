"""Training a self-explaining model on a source domain: cross-entropy plus explanation supervision."""

from __future__ import annotations

import copy
from typing import Any

from explainvec.models.adapter import add_adapter
from explainvec.models.checkpoint import Checkpoint
from explainvec.models.fingerprint import fingerprint
from explainvec.progress import SILENT, Tracker
from explainvec.shapley.label_cache import LabelCache
from explainvec.training.config import TrainConfig
from explainvec.training.finetune import load_splits, trained_checkpoint, zero_shot_config
from explainvec.training.head import replace_head
from explainvec.training.loop import fit
from explainvec.training.supervision import AmortisedGameLoss, LabelRegressionLoss
from explainvec.vocabulary import GAME_OUTPUT, READOUT, AdapterKind, Init, Supervision


def train_explainer(
    base: Checkpoint,
    value_model: Checkpoint,
    data: str,
    config: TrainConfig,
    *,
    supervision: Supervision = "embedding",
    alpha: float = 0.05,
    num_coalitions: int = 16,
    bank: bool = True,
    init: Init = "base",
    adapter: AdapterKind | None = None,
    labels: LabelCache | None = None,
    masks: str | None = None,
    progress: Tracker = SILENT,
    **run: Any,
) -> Checkpoint:
    """A self-explaining model of ``data``, trained with cross-entropy + ``alpha`` · explanation loss
    against the frozen ``value_model``. ``init="base"`` (default) fine-tunes it from the base beside the
    value model, with the same data order, so τ = it − value model is a difference of two fine-tunes of
    the base; ``"value"`` starts from the value model. ``base`` transferred better at 7×7 and without
    patch dropping, and as well elsewhere (docs/transfer.md). ``adapter`` adds the class-agnostic
    explanation adapter of that kind. ``labels`` (supervision ``"labels"``) must hold
    labels of this value model, data, seed and training split. ``bank`` (amortised modes): each item's
    coalitions are drawn, and evaluated by the value model, once and reused every epoch
    (``AmortisedGameLoss``). ``run`` goes to ``fit`` (``fabric``, ``state``, ``resume``)."""
    if value_model.meta.base_fingerprint != base.meta.base_fingerprint:
        raise ValueError("the value model was not fine-tuned from this base (fingerprints differ)")
    train, val = load_splits(base, data, config, masks)
    if train.class_names != value_model.meta.class_names:
        raise ValueError(
            f"value model classes {value_model.meta.class_names} differ from {train.class_names}"
        )
    config = zero_shot_config(base, train.class_names, config)
    value_fingerprint = fingerprint(value_model.model.state_dict())
    if supervision == "labels":
        if labels is None:
            raise ValueError("supervision 'labels' needs a label cache (explainvec labels ...)")
        targets = labels.load_for(
            value_model=value_fingerprint, data=data, seed=config.seed, num_items=len(train)
        )
        loss = LabelRegressionLoss(targets, alpha=alpha)
    else:
        loss = AmortisedGameLoss(
            copy.deepcopy(value_model.model),
            output=GAME_OUTPUT[supervision],
            num_coalitions=num_coalitions,
            alpha=alpha,
            seed=config.seed,
            bank=bank,
        )
    if init == "value":
        model = copy.deepcopy(value_model.model)
    else:
        model = copy.deepcopy(base.model)
        replace_head(model, base.meta.class_names, train.class_names, config.seed)
    if adapter:
        add_adapter(model, adapter)
    history = fit(
        model, train, config, extra_loss=loss, progress=progress, description=f"explain on {data}", **run
    )
    explanation = {
        "readout": READOUT[supervision],
        "supervision": supervision,
        "alpha": alpha,
        "coalitions": num_coalitions,
        "coalition_bank": bank if supervision != "labels" else None,
        "init": init,
        "adapter": adapter or False,
        "value_model": value_fingerprint,
    }
    return trained_checkpoint(
        base, model, data, config, history, val, kind="explain", explanation=explanation
    )
