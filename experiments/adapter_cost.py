"""Training cost of a shared τ for each explanation adapter kind, side by side: the default recipe
(``train_shared_vector``, adapter alone, games on the base's pretraining images) on the same source
models, the kinds alternated in rounds so the machine's noise falls on all of them; wall-clock ratios
to the first kind.

    python experiments/adapter_cost.py BASE SOURCE [SOURCE ...] --kinds two-hop two-hop-mlp
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from explainvec.models.checkpoint import load_checkpoint
from explainvec.training.config import TrainConfig
from explainvec.vectors import train_shared_vector
from explainvec.vectors.shared import SHARED_LR


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("base")
    parser.add_argument("sources", nargs="+", help="prediction-only source checkpoints")
    parser.add_argument("--kinds", nargs="+", default=["two-hop", "two-hop-mlp"])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load_checkpoint(args.base)
    sources = [load_checkpoint(path) for path in args.sources]
    config = TrainConfig(epochs=args.epochs, lr=SHARED_LR, train_size=args.images, keep_min=1.0)
    seconds: dict[str, list[float]] = {kind: [] for kind in args.kinds}
    for _ in range(args.rounds):
        for kind in args.kinds:
            start = time.perf_counter()
            train_shared_vector(base, sources, config, adapter=kind, backbone=False)
            seconds[kind].append(time.perf_counter() - start)
    first = statistics.median(seconds[args.kinds[0]])
    for kind, times in seconds.items():
        median = statistics.median(times)
        print(
            f"{kind}: median {median:.1f} s over {args.rounds} rounds, ÷ {args.kinds[0]} {median / first:.2f}"
        )


if __name__ == "__main__":
    main()
