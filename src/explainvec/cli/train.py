"""``explainvec train``: fine-tune a base checkpoint on a domain or an image folder."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.models.checkpoint import load_checkpoint, save_checkpoint
from explainvec.shapley.label_cache import LabelCache
from explainvec.training.config import TrainConfig
from explainvec.training.explain import train_explainer
from explainvec.training.finetune import finetune

DEFAULTS = TrainConfig()


class Mode(str, Enum):
    predict = "predict"
    explain = "explain"


class Supervision(str, Enum):
    amortised = "amortised"
    logit = "logit"
    embedding = "embedding"
    labels = "labels"


class Init(str, Enum):
    value = "value"
    base = "base"


@app.command("train")
@handle_errors
def train_command(
    base: Path = typer.Option(..., help="Base checkpoint every model starts from."),
    data: str = typer.Option(..., help="synthetic:<domain> or an image folder root/<class>/*.png."),
    out: Path = typer.Option(..., help="Checkpoint to write (.safetensors)."),
    mode: Mode = typer.Option(Mode.predict, help="predict: classification only; explain: self-explaining."),
    value_model: Path | None = typer.Option(None, help="explain mode: frozen prediction-only model of DATA."),
    supervision: Supervision = typer.Option(
        Supervision.embedding, help="explain mode: the Shapley game to supervise (see docs)."
    ),
    alpha: float = typer.Option(0.05, help="explain mode: weight of the explanation loss."),
    coalitions: int = typer.Option(16, help="explain mode: K coalitions per image and step (even)."),
    init: Init = typer.Option(
        Init.base, help="explain mode: fine-tune from the base beside the value model (default) or from it."
    ),
    adapter: bool = typer.Option(
        False, help="explain mode: add the class-agnostic explanation adapter on patch tokens (travels in τ)."
    ),
    labels: Path | None = typer.Option(None, help="explain mode, labels supervision: label cache folder."),
    masks: str | None = typer.Option(
        None, help="Mask folder beside an image folder (masks/<class>/<name>.png)."
    ),
    epochs: int = typer.Option(DEFAULTS.epochs),
    lr: float = typer.Option(DEFAULTS.lr),
    batch_size: int = typer.Option(DEFAULTS.batch_size),
    train_size: int = typer.Option(DEFAULTS.train_size, help="Synthetic data only: training images."),
    keep_min: float | None = typer.Option(
        None, help="Patch dropping: keep at least this share (default 0.5 predict, 1.0 explain)."
    ),
    freeze_head: bool | None = typer.Option(
        None, "--freeze-head/--train-head", help="Default: trained in predict mode, frozen in explain mode."
    ),
    seed: int = typer.Option(0),
    device: str = typer.Option("cpu"),
) -> None:
    """Fine-tune BASE on DATA (prediction-only, or self-explaining) and write the model with its sidecar."""
    explain = mode == Mode.explain
    if explain and value_model is None:
        raise ValueError("--mode explain needs --value-model (the prediction-only model of DATA)")
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        train_size=train_size,
        keep_min=keep_min if keep_min is not None else (1.0 if explain else DEFAULTS.keep_min),
        freeze_head=freeze_head if freeze_head is not None else explain,
        seed=seed,
        device=device,
    )
    base_checkpoint = load_checkpoint(base)
    with progress_bar() as progress:
        if explain:
            checkpoint = train_explainer(
                base_checkpoint,
                load_checkpoint(value_model),
                data,
                config,
                supervision=supervision.value,
                alpha=alpha,
                num_coalitions=coalitions,
                init=init.value,
                adapter=adapter,
                labels=LabelCache(labels).load() if labels else None,
                masks=masks,
                progress=progress,
            )
        else:
            checkpoint = finetune(base_checkpoint, data, config, masks=masks, progress=progress)
    save_checkpoint(out, checkpoint)
    console.print(f"wrote {out} (val accuracy {checkpoint.meta.metrics['val_accuracy']:.3f})")
