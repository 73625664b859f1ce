"""Accuracy of the base (its mixture head restricted to a domain's classes) and of a prediction-only
fine-tune on every embedded domain, with wall-clock times.

    python experiments/domain_accuracy.py --preset 4x4
"""

from __future__ import annotations

import argparse
import time

from explainvec.data import DOMAINS, load_data
from explainvec.evaluation.evaluate import evaluate_checkpoint
from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.prediction import predict_logits, top1_accuracy
from explainvec.training.base_cache import cached_base
from explainvec.training.config import TrainConfig
from explainvec.training.finetune import finetune


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="4x4")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

    start = time.perf_counter()
    base = load_checkpoint(cached_base(args.preset))
    print(f"base ({args.preset}): mixture val accuracy {base.meta.metrics['val_accuracy']:.3f}, "
          f"load or pretrain {time.perf_counter() - start:.1f}s")  # fmt: skip
    print("| domain | base accuracy | fine-tuned accuracy | fine-tune s |")
    print("|---|---|---|---|")
    for name in DOMAINS:
        data = f"synthetic:{name}"
        test = load_data(data, "test", preprocess=base.meta.preprocess, patch_size=8)
        known = [base.meta.class_names.index(c) for c in test.class_names if c in base.meta.class_names]
        base_accuracy = "—"
        if len(known) == len(test.class_names):
            logits, labels = predict_logits(base.model, test)
            base_accuracy = f"{top1_accuracy(logits[:, known], labels):.3f}"
        start = time.perf_counter()
        model = finetune(base, data, TrainConfig(epochs=args.epochs))
        seconds = time.perf_counter() - start
        accuracy = evaluate_checkpoint(model, data).accuracy
        print(f"| {name} | {base_accuracy} | {accuracy:.3f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
