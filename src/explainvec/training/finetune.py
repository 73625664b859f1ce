"""Fine-tuning a base checkpoint on a domain or an image folder (prediction-only mode)."""

from __future__ import annotations

import copy
from typing import Any

from timm.models.vision_transformer import VisionTransformer
from torch.utils.data import Dataset

from explainvec.models.checkpoint import Checkpoint, CheckpointMeta
from explainvec.models.prediction import predict_logits, top1_accuracy
from explainvec.progress import SILENT, Tracker
from explainvec.training.config import TrainConfig
from explainvec.training.head import replace_head
from explainvec.training.loop import fit


def finetune(
    base: Checkpoint,
    data: str,
    config: TrainConfig,
    *,
    masks: str | None = None,
    progress: Tracker = SILENT,
    **run: Any,
) -> Checkpoint:
    """A prediction-only model: ``base`` fine-tuned with cross-entropy on ``data`` (its own head; a CLIP
    base's zero-shot head is kept frozen, see ``zero_shot_config``).

    The result records the base's fingerprint, the data, the config and its validation accuracy.
    ``run`` goes to ``fit`` (``fabric``, ``state``, ``resume``).
    """
    train, val = load_splits(base, data, config, masks)
    config = zero_shot_config(base, train.class_names, config)
    model = copy.deepcopy(base.model)
    replace_head(model, base.meta.class_names, train.class_names, config.seed)
    history = fit(model, train, config, progress=progress, description=f"fine-tune on {data}", **run)
    return trained_checkpoint(base, model, data, config, history, val, kind="predict")


def zero_shot_config(base: Checkpoint, class_names: list[str], config: TrainConfig) -> TrainConfig:
    """``config`` with the head frozen when ``base`` carries a CLIP zero-shot head (task arithmetic keeps
    it); such a head only fits data with its own classes, in its order."""
    if base.meta.training.zero_shot_head is None:
        return config
    if class_names != base.meta.class_names:
        raise ValueError(
            f"the base's zero-shot head has classes {base.meta.class_names}, the data {class_names}: "
            "build the CLIP base with the data's class names, in the data's order"
        )
    return config.model_copy(update={"freeze_head": True})


def load_splits(
    base: Checkpoint, data: str, config: TrainConfig, masks: str | None
) -> tuple[Dataset, Dataset]:
    """The train and val splits of ``data``, preprocessed for ``base``'s model."""
    train = base.load_split(data, "train", size=config.train_size, masks=masks, seed=config.seed)
    val = base.load_split(data, "val", size=config.eval_size, masks=masks, seed=config.seed)
    return train, val


def trained_checkpoint(
    base: Checkpoint,
    model: VisionTransformer,
    data: str,
    config: TrainConfig,
    history: list[float],
    val: Dataset,
    *,
    kind: str,
    explanation: dict | None = None,
) -> Checkpoint:
    """A fine-tuned model with its metadata: base fingerprint, data, config, loss curve, val accuracy."""
    accuracy = top1_accuracy(*predict_logits(model, val, device=config.device))
    meta = CheckpointMeta(
        kind=kind,
        architecture={**base.meta.architecture, "num_classes": len(val.class_names)},
        class_names=val.class_names,
        preprocess=base.meta.preprocess,
        base_fingerprint=base.meta.base_fingerprint,
        training={"mode": kind, "data": data, "config": config.model_dump(), "loss": history},
        metrics={"val_accuracy": accuracy},
        explanation=explanation or {},
    )
    return Checkpoint(model.cpu(), meta)
