"""``explainvec train``: fine-tune a base checkpoint on a domain or an image folder."""

from __future__ import annotations

from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.models.backbones import is_timm_spec, load_base
from explainvec.models.checkpoint import check_checkpoint_output, load_checkpoint, save_checkpoint
from explainvec.models.device import resolve_device
from explainvec.shapley.label_cache import LabelCache
from explainvec.training.config import TrainConfig
from explainvec.training.engine import launch
from explainvec.training.explain import train_explainer
from explainvec.training.finetune import finetune
from explainvec.training.state import state_path
from explainvec.vocabulary import AdapterChoice, Init, Mode, Precision, Supervision

DEFAULTS = TrainConfig()


@app.command("train")
@handle_errors
def train_command(
    base: str = typer.Option(..., help="Base checkpoint every model starts from, or timm:<model name>."),
    data: str = typer.Option(..., help="synthetic:<domain> or an image folder root/<class>/*.png."),
    out: Path = typer.Option(..., help="Checkpoint to write (.safetensors)."),
    mode: Mode = typer.Option("predict", help="predict: classification only; explain: self-explaining."),
    value_model: Path | None = typer.Option(None, help="explain mode: frozen prediction-only model of DATA."),
    supervision: Supervision = typer.Option(
        "embedding", help="explain mode: the Shapley game to supervise (see docs)."
    ),
    alpha: float = typer.Option(0.05, help="explain mode: weight of the explanation loss."),
    coalitions: int = typer.Option(16, help="explain mode: K coalitions per image and step (even)."),
    bank: bool = typer.Option(
        True,
        "--bank/--fresh-coalitions",
        help="explain mode: draw each image's K coalitions once and run the value model on them once,"
        " reused every epoch (--fresh-coalitions: new ones, and value-model passes, every step).",
    ),
    init: Init = typer.Option(
        "base", help="explain mode: fine-tune from the base beside the value model (default) or from it."
    ),
    adapter: AdapterChoice = typer.Option(
        "none", help="explain mode: add the class-agnostic explanation adapter of this kind (travels in τ)."
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
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    devices: int = typer.Option(1, help="Data-parallel processes per node (starts them unless launched)."),
    num_nodes: int = typer.Option(1, help="Nodes (launch with fabric run, torchrun or SLURM)."),
    precision: Precision = typer.Option("32-true", help="bf16-mixed on recent GPUs."),
    workers: int = typer.Option(0, help="Data-loading worker processes per training process."),
    resume: bool = typer.Option(False, help="Continue a killed run from OUT's .train-state file."),
    save_every: int = typer.Option(0, help="Write the resumable state every N steps (0: each epoch)."),
    weights: Path | None = typer.Option(None, help="--base timm:<name>: local weights file."),
    img_size: int | None = typer.Option(None, help="--base timm:<name>: input size."),
    allow_download: bool = typer.Option(False, help="--base timm:<name> without --weights: download."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing OUT (never BASE or the value model)."
    ),
) -> None:
    """Fine-tune BASE on DATA (prediction-only, or self-explaining) and write the model with its sidecar."""
    device = str(resolve_device(device))
    explain = mode == "explain"
    if explain and value_model is None:
        raise ValueError("--mode explain needs --value-model (the prediction-only model of DATA)")
    inputs = (None if is_timm_spec(base) else base, value_model, weights)
    check_checkpoint_output(out, inputs=inputs, overwrite=overwrite)
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        train_size=train_size,
        keep_min=keep_min if keep_min is not None else (1.0 if explain else DEFAULTS.keep_min),
        freeze_head=freeze_head if freeze_head is not None else explain,
        seed=seed,
        device=device,
        devices=devices,
        num_nodes=num_nodes,
        precision=precision,
        workers=workers,
        save_every=save_every,
    )
    state = state_path(out)
    if state.is_file() and not resume:
        raise FileExistsError(f"{state} holds an interrupted run: add --resume to continue it, or delete it")
    fabric = launch(config)
    config = config.model_copy(update={"device": str(fabric.device)})  # this rank's device, for evaluation
    base_checkpoint = load_base(base, weights=weights, allow_download=allow_download, image_size=img_size)
    run = {"fabric": fabric, "state": state, "resume": resume}
    with progress_bar(enabled=fabric.is_global_zero) as progress:
        if explain:
            checkpoint = train_explainer(
                base_checkpoint,
                load_checkpoint(value_model),
                data,
                config,
                supervision=supervision,
                alpha=alpha,
                num_coalitions=coalitions,
                bank=bank,
                init=init,
                adapter=None if adapter == "none" else adapter,
                labels=LabelCache(labels) if labels else None,
                masks=masks,
                progress=progress,
                **run,
            )
        else:
            checkpoint = finetune(base_checkpoint, data, config, masks=masks, progress=progress, **run)
    if not fabric.is_global_zero:
        return
    save_checkpoint(out, checkpoint)
    state.unlink(missing_ok=True)
    console.print(f"wrote {out} (val accuracy {checkpoint.meta.metrics['val_accuracy']:.3f})")
