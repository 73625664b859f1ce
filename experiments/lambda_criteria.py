"""The λ that ``apply --lam auto`` chooses by each criterion, on one target model and τ (issue 18, item 2).

python experiments/lambda_criteria.py --models DIR [--data synthetic:glyphs] [--images 128]

``DIR`` holds ``target_predict.safetensors`` and ``tau.safetensors`` (as ``explainvec demo`` writes them
under ``models/``). Prints the ``shapley_fit`` curve over the default grid (it gives every λ's agreement),
then insertion − deletion at the λ whose agreement is ≥ 0.99 (the only ones ``choose_lambda`` can pick,
so the old criterion's choice for less work), each as it comes, and both choices with their times.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.self_explaining import SelfExplainingViT, readout_of
from explainvec.transfer import choose_lambda, lambda_curve
from explainvec.transfer.lambda_search import InsertionDeletion
from explainvec.vectors import ExplainabilityVector


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--data", default="synthetic:glyphs")
    parser.add_argument("--images", type=int, default=128)
    args = parser.parse_args()
    target = load_checkpoint(args.models / "target_predict.safetensors")
    tau = ExplainabilityVector.load(args.models / "tau.safetensors")
    images = target.split_images(args.data, "val", args.images)
    readout = readout_of(target)
    start = time.perf_counter()
    curve = lambda_curve(target.model, tau, images, readout=readout, criterion="shapley_fit")
    print(f"shapley_fit: λ = {choose_lambda(curve).lam:g} ({time.perf_counter() - start:.1f} s)", flush=True)
    for point in curve:
        print("   ", {k: round(v, 4) for k, v in point.as_dict().items()}, flush=True)
    allowed = [p.lam for p in curve if p.agreement >= 0.99] or [min((p.lam for p in curve), key=abs)]
    model = target.model.eval()
    explainer = SelfExplainingViT(model, target.meta.class_names, readout)
    score, best, start = InsertionDeletion(model, images, None), None, time.perf_counter()
    with torch.no_grad(), tau.edit(model) as edit:
        for lam in allowed:
            edit.set(lam)
            value, details = score(model, explainer(images))
            print("   ", lam, {k: round(v, 4) for k, v in details.items()}, flush=True)
            best = (value, lam) if best is None or value > best[0] else best
    print(f"insertion_deletion: λ = {best[1]:g} ({time.perf_counter() - start:.1f} s for {len(allowed)} λ)")


if __name__ == "__main__":
    main()
