"""Per-image fidelity of one row of a study: Pearson with the reference, insertion and deletion."""

from __future__ import annotations

import torch

from explainvec.evaluation import metrics as m
from explainvec.evaluation.baselines import get_attributor
from explainvec.evaluation.suite import Batch, of_class
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.shapley.model_games import MaskedModelGame

PER_IMAGE = ("pearson", "insertion_auc", "deletion_auc", "insertion_minus_deletion")


def per_image(
    model: SelfExplainingViT,
    batch: Batch,
    reference: torch.Tensor | None,
    attributor: str = "single_pass",
) -> dict[str, list[float]]:
    """The map of ``attributor`` on ``model`` for each image's predicted class, scored against
    ``reference`` (the same model's Shapley values ``[B, P, C]``; no Pearson without one) and by
    insertion/deletion under attention masking."""
    with torch.no_grad():
        out = model(batch.images)
    maps = get_attributor(attributor)(model, batch.images, out).detach()
    predicted = out.predicted
    own = of_class(maps, predicted)
    insertion, deletion = m.insertion_deletion_auc(MaskedModelGame(model.vit, batch.images), own, predicted)
    values = {
        "insertion_auc": insertion,
        "deletion_auc": deletion,
        "insertion_minus_deletion": insertion - deletion,
    }
    if reference is not None:
        values["pearson"] = m.pearson(own, of_class(reference, predicted))
    return {name: values[name].tolist() for name in PER_IMAGE if name in values}
