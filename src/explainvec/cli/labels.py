"""``explainvec labels``: Kernel SHAP labels of a training set, sharded and resumable."""

from __future__ import annotations

from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.fingerprint import fingerprint
from explainvec.models.vit import num_patches
from explainvec.shapley.label_cache import LabelCache


@app.command("labels")
@handle_errors
def labels_command(
    value_model: Path = typer.Option(..., help="Prediction-only model whose Shapley values are the labels."),
    data: str = typer.Option(..., help="synthetic:<domain> or an image folder (its train split)."),
    out: Path = typer.Option(..., help="Label cache folder (created, or resumed)."),
    budget: int = typer.Option(512, help="Kernel SHAP evaluations per image, v(∅) and v(all) included."),
    shard_size: int = typer.Option(128, help="Images per shard file."),
    train_size: int = typer.Option(2000, help="Synthetic data only: training images (must match train)."),
    rank: int = typer.Option(0, help="This process's rank: it computes shards k with k % world == rank."),
    world_size: int = typer.Option(1, help="Number of processes filling the cache."),
    seed: int = typer.Option(0),
    device: str = typer.Option("cpu"),
) -> None:
    """Compute the Kernel SHAP label cache for `train --mode explain --supervision labels`."""
    checkpoint = load_checkpoint(value_model)
    train = checkpoint.load_split(data, "train", size=train_size, seed=seed)
    cache = LabelCache(out)
    cache.create(
        {
            "value_model": fingerprint(checkpoint.model.state_dict()),
            "data": data,
            "output": "probability",
            "budget": budget,
            "num_items": len(train),
            "num_players": num_patches(checkpoint.model),
            "shard_size": shard_size,
            "seed": seed,
        }
    )
    with progress_bar() as progress:
        done = cache.compute(
            checkpoint.model, train, rank=rank, world_size=world_size, device=device, progress=progress
        )
    console.print(f"computed {done} shards; {len(cache.missing())} still missing")
    if not cache.missing():
        console.print(f"wrote {cache.merge()}")
