"""``explainvec labels``: Kernel SHAP labels of a training set, sharded and resumable."""

from __future__ import annotations

from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.io import check_resumable_folder
from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.device import resolve_device
from explainvec.models.fingerprint import fingerprint
from explainvec.models.vit import num_patches
from explainvec.shapley.label_cache import META, LabelCache, LabelCacheMeta
from explainvec.training.config import TrainConfig
from explainvec.training.engine import launch
from explainvec.vocabulary import Readout, Split


@app.command("labels")
@handle_errors
def labels_command(
    value_model: Path = typer.Option(..., help="Prediction-only model whose Shapley values are the labels."),
    data: str = typer.Option(..., help="synthetic:<domain> or an image folder."),
    out: Path = typer.Option(..., help="Label cache folder (created, or resumed)."),
    budget: int = typer.Option(512, help="Kernel SHAP evaluations per image, v(∅) and v(all) included."),
    split: Split = typer.Option(
        "train", help="train (for --supervision labels) or test (a reference that evaluate --labels reuses)."
    ),
    output: Readout = typer.Option(
        "probability", help="The game: probability (training labels) or logit (the evaluated read-out)."
    ),
    shard_size: int = typer.Option(128, help="Images per shard file."),
    train_size: int = typer.Option(
        2000, help="Synthetic data only: images of the split (as in train; for test: evaluate's --images)."
    ),
    rank: int = typer.Option(0, help="This process's rank: it computes shards k with k % world == rank."),
    world_size: int = typer.Option(1, help="Number of processes filling the cache."),
    seed: int = typer.Option(0),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    devices: int = typer.Option(1, help="Processes per node, each filling its shards (instead of --rank)."),
    num_nodes: int = typer.Option(1, help="Nodes (launch with fabric run, torchrun or SLURM)."),
) -> None:
    """Compute the Kernel SHAP label cache for `train --mode explain --supervision labels`."""
    check_resumable_folder(out, META)
    device = str(resolve_device(device))
    fabric = None
    if devices > 1 or num_nodes > 1:
        fabric = launch(TrainConfig(device=device, devices=devices, num_nodes=num_nodes))
        rank, world_size, device = fabric.global_rank, fabric.world_size, str(fabric.device)
    checkpoint = load_checkpoint(value_model)
    train = checkpoint.load_split(data, split, size=train_size, seed=seed)
    cache = LabelCache(out)
    cache.create(
        LabelCacheMeta(
            value_model=fingerprint(checkpoint.model.state_dict()),
            data=data,
            split=split,
            output=output,
            budget=budget,
            num_items=len(train),
            num_players=num_patches(checkpoint.model),
            shard_size=shard_size,
            seed=seed,
        )
    )
    with progress_bar(enabled=rank == 0) as progress:
        done = cache.compute(
            checkpoint.model, train, rank=rank, world_size=world_size, device=device, progress=progress
        )
    if fabric is not None:
        fabric.barrier()
        if not fabric.is_global_zero:
            return
    console.print(f"computed {done} shards; {len(cache.missing())} still missing")
    if not cache.missing():
        console.print(f"wrote {cache.merge()}")
