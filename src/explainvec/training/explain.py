"""Training a self-explaining model on a source domain: cross-entropy plus explanation supervision."""

from __future__ import annotations

import copy
from typing import Literal

import torch
from rich.progress import Progress

from explainvec.data.sources import load_data
from explainvec.evaluation.accuracy import predict_logits, top1_accuracy
from explainvec.models.checkpoint import Checkpoint, CheckpointMeta
from explainvec.models.fingerprint import fingerprint
from explainvec.models.vit import patch_size
from explainvec.training.config import TrainConfig
from explainvec.training.head import replace_head
from explainvec.training.loop import fit
from explainvec.training.supervision import AmortisedGameLoss, LabelRegressionLoss

Supervision = Literal["amortised", "logit", "embedding", "labels"]
GAME_OUTPUT = {"amortised": "probability", "logit": "logit", "embedding": "embedding"}
READOUT = {"amortised": "probability", "logit": "logit", "embedding": "logit", "labels": "probability"}


def train_explainer(
    base: Checkpoint,
    value_model: Checkpoint,
    data: str,
    config: TrainConfig,
    *,
    supervision: Supervision = "embedding",
    alpha: float = 0.05,
    num_coalitions: int = 16,
    init: Literal["value", "base"] = "value",
    labels: torch.Tensor | None = None,
    masks: str | None = None,
    progress: Progress | None = None,
) -> Checkpoint:
    """A self-explaining model of ``data``: initialised from ``value_model`` (or the base), trained with
    cross-entropy + ``alpha`` · explanation loss against the frozen ``value_model``."""
    if value_model.meta.base_fingerprint != base.meta.base_fingerprint:
        raise ValueError("the value model was not fine-tuned from this base (fingerprints differ)")
    load = {"preprocess": base.meta.preprocess, "patch_size": patch_size(base.model), "seed": config.seed}
    train = load_data(data, "train", size=config.train_size, masks=masks, **load)
    val = load_data(data, "val", size=config.eval_size, masks=masks, **load)
    if train.class_names != value_model.meta.class_names:
        raise ValueError(
            f"value model classes {value_model.meta.class_names} differ from {train.class_names}"
        )
    if supervision == "labels":
        if labels is None:
            raise ValueError("supervision 'labels' needs a label cache (explainvec labels ...)")
        if labels.shape[0] != len(train):
            raise ValueError(f"label cache holds {labels.shape[0]} items, the training split {len(train)}")
        loss = LabelRegressionLoss(labels, alpha=alpha)
    else:
        loss = AmortisedGameLoss(
            copy.deepcopy(value_model.model),
            output=GAME_OUTPUT[supervision],
            num_coalitions=num_coalitions,
            alpha=alpha,
            seed=config.seed,
        )
    if init == "value":
        model = copy.deepcopy(value_model.model)
    else:
        model = copy.deepcopy(base.model)
        replace_head(model, base.meta.class_names, train.class_names, config.seed)
    history = fit(model, train, config, extra_loss=loss, progress=progress, description=f"explain on {data}")
    accuracy = top1_accuracy(*predict_logits(model, val, device=config.device))
    explanation = {
        "readout": READOUT[supervision],
        "supervision": supervision,
        "alpha": alpha,
        "coalitions": num_coalitions,
        "init": init,
        "value_model": fingerprint(value_model.model.state_dict()),
    }
    meta = CheckpointMeta(
        kind="explain",
        architecture={**base.meta.architecture, "num_classes": len(train.class_names)},
        class_names=train.class_names,
        preprocess=base.meta.preprocess,
        base_fingerprint=base.meta.base_fingerprint,
        training={"mode": "explain", "data": data, "config": config.model_dump(), "loss": history},
        metrics={"val_accuracy": accuracy},
        explanation=explanation,
    )
    return Checkpoint(model.cpu(), meta)
