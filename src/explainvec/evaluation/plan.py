"""Planning the suite's rows: which methods are compared, which model each explains, and with what."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from explainvec.evaluation.baselines import attributor_cost, get_attributor, random_vector_like
from explainvec.evaluation.suite import Method
from explainvec.models.checkpoint import Checkpoint
from explainvec.models.self_explaining import SelfExplainingViT, readout_of
from explainvec.vectors.explainability_vector import ExplainabilityVector
from explainvec.vocabulary import Readout

BASELINES = ("kernelshap150", "random", "rollout", "direct_attribution", "integrated_gradients")
"""Baselines the suite runs by default on the unedited model (or the model itself without one)."""


@dataclass(frozen=True)
class Comparison:
    """What the model is compared with: ``reference`` (the unedited model), ``oracle``, ``vector`` (the one
    applied to the model, for a random-vector control) and ``baselines``; ``name`` is the model's row."""

    name: str = "model"
    reference: Checkpoint | None = None
    oracle: Checkpoint | None = None
    vector: ExplainabilityVector | None = None
    baselines: tuple[str, ...] = BASELINES


@dataclass(frozen=True)
class Row:
    """One planned row: the method (wrapped model, attributor, cost) and the checkpoint it explains."""

    method: Method
    checkpoint: Checkpoint


@dataclass(frozen=True)
class Plan:
    """The suite's rows in report order (the model's own first), for ``checkpoint`` compared with
    ``reference``; every model is read out as ``readout``."""

    checkpoint: Checkpoint
    reference: Checkpoint | None
    readout: Readout
    rows: list[Row]

    @property
    def methods(self) -> list[Method]:
        return [row.method for row in self.rows]

    @property
    def explained(self) -> Checkpoint:
        """The model the baselines explain and agreement is measured with."""
        return self.reference or self.checkpoint


def plan_rows(checkpoint: Checkpoint, comparison: Comparison, device: str | torch.device = "cpu") -> Plan:
    """The rows of ``checkpoint``'s report: its single pass; with a reference ``lambda0`` and the baselines
    on it (else on the model); ``random_vector`` with a vector, a reference and a λ; ``oracle`` when given.
    Each distinct model is wrapped with the model's read-out and moved to ``device`` once."""
    reference, readout = comparison.reference, readout_of(checkpoint)
    explained = reference or checkpoint
    planned = [(comparison.name, checkpoint, "single_pass")]
    if reference is not None:
        planned.append(("lambda0", reference, "single_pass"))
    planned += [(b, explained, b) for b in comparison.baselines]
    lam = checkpoint.meta.explanation.lam
    if comparison.vector is not None and reference is not None and lam is not None:
        control = random_vector_like(comparison.vector).apply_to(reference.model, lam)
        planned.append(("random_vector", Checkpoint(control, reference.meta), "single_pass"))
    if comparison.oracle is not None:
        planned.append(("oracle", comparison.oracle, "single_pass"))
    wrapped = {
        id(c): SelfExplainingViT(c.model, c.meta.class_names, readout).to(device).eval()
        for _, c, _ in planned
    }
    rows = [
        Row(Method(name, wrapped[id(c)], get_attributor(a), attributor_cost(a, len(c.meta.class_names))), c)
        for name, c, a in planned
    ]
    return Plan(checkpoint, reference, readout, rows)
