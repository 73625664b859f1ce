"""What the map studies in this folder share: their command line (targets, data, images, budget) and
each target's logit read-out, test images (those a study measures) and reference Shapley values
(Kernel SHAP of the logit game)."""

from __future__ import annotations

import argparse

import torch

from explainvec.evaluation.evaluate import suite_batch
from explainvec.evaluation.suite import Batch, SuiteConfig, reference_values
from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.self_explaining import SelfExplainingViT


def map_study_arguments(doc: str, *, images: int, budget: int, several: bool = True) -> argparse.Namespace:
    """The parsed command line: ``targets`` (one ``target`` unless ``several``), ``--data``,
    ``--images``, ``--budget``; and torch set to one thread."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if several:
        parser.add_argument("targets", nargs="+", help="prediction-only checkpoints")
    else:
        parser.add_argument("target", help="a prediction-only checkpoint")
    parser.add_argument("--data", required=True)
    parser.add_argument("--images", type=int, default=images)
    parser.add_argument("--budget", type=int, default=budget)
    args = parser.parse_args()
    torch.set_num_threads(1)
    return args


def with_reference(
    path: str, data: str, images: int, budget: int
) -> tuple[SelfExplainingViT, Batch, torch.Tensor]:
    """The target at ``path`` with the logit read-out, its first ``images`` test images of ``data`` and
    their Kernel SHAP-``budget`` values ``[B, P, C]``."""
    target = load_checkpoint(path)
    batch = suite_batch(target, data, images, None, target)
    model = SelfExplainingViT(target.model.eval(), target.meta.class_names, "logit").eval()
    config = SuiteConfig(reference_budget=budget, exact_reference=False)
    return model, batch, reference_values(model, batch, config).values
