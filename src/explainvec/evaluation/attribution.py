"""explainvec's maps in the shapes other tools take: a captum ``Attribution`` and a Quantus ``explain_func``.

Both run any attributor of :data:`explainvec.evaluation.baselines.ATTRIBUTORS` (``single_pass``,
``kernelshap<N>``, ``rollout`` …) and return its patch map of the target class upsampled to the input, so
captum's visualisation and Quantus's metrics compare the single pass with the baselines on equal terms.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from captum.attr import Attribution
from torch import nn

from explainvec.evaluation.baselines import get_attributor
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.vocabulary import DEFAULT_READOUT, Readout


class PatchAttribution(Attribution):
    """captum-style: ``PatchAttribution(model).attribute(inputs, target=c)`` is the map of ``method`` for
    class ``c`` (an int, one per image, or ``None``: the predicted class) as ``[B, 3, H, W]``, the patch
    grid upsampled to the inputs (the same value in every channel; ``smooth``: bilinear)."""

    def __init__(
        self, model: SelfExplainingViT, method: str = "single_pass", *, smooth: bool = False
    ) -> None:
        super().__init__(model.vit)
        self.model, self.method, self.smooth = model, method, smooth
        self.attributor = get_attributor(method)

    def attribute(
        self, inputs: torch.Tensor, target: int | list[int] | torch.Tensor | None = None
    ) -> torch.Tensor:
        with torch.no_grad():
            out = self.model(inputs)
        maps = replace(out, attributions=self.attributor(self.model, inputs, out).detach())
        target = None if target is None else torch.as_tensor(target)
        return maps.heatmap(target, smooth=self.smooth)[:, None].expand_as(inputs).clone()

    def has_convergence_delta(self) -> bool:
        return False


def explain_func(
    model: nn.Module,
    inputs: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor,
    *,
    method: str = "single_pass",
    readout: Readout = DEFAULT_READOUT,
    smooth: bool = False,
    **_: object,
) -> np.ndarray:
    """A Quantus ``explain_func``: the ``[B, 1, H, W]`` map of ``method`` for each image's target class.

    ``model`` is the one the metric was given: a timm ViT (its logits are what Quantus perturbs) or a
    :class:`SelfExplainingViT`; ``readout`` is the read-out of the map (pass the checkpoint's, see
    :func:`explainvec.readout_of`). Other keywords Quantus passes (``device`` …) are ignored: the images
    run where the model is."""
    if not isinstance(model, SelfExplainingViT):
        model = SelfExplainingViT(model, [f"class_{i}" for i in range(model.num_classes)], readout)
    parameter = next(model.parameters())
    images = torch.as_tensor(inputs, dtype=parameter.dtype, device=parameter.device)
    maps = PatchAttribution(model, method, smooth=smooth).attribute(images, target=torch.as_tensor(targets))
    return maps[:, :1].cpu().numpy()
