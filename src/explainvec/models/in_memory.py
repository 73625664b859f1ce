"""Models already in memory (a notebook's timm or ``transformers`` ViT) as checkpoints, with no file round
trip: ``explainvec.wrap(model)`` then apply a vector, explain, draw."""

from __future__ import annotations

from pathlib import Path

import torch
from timm.data import resolve_model_data_config
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from transformers import PreTrainedModel

from explainvec.data.preprocess import Preprocess
from explainvec.errors import ExplainvecError
from explainvec.models.adapter import adapter_field
from explainvec.models.checkpoint import Checkpoint, CheckpointMeta, load_checkpoint
from explainvec.models.fingerprint import fingerprint
from explainvec.models.huggingface import hf_checkpoint
from explainvec.models.vit import build_vit, grid_size, image_size, patch_size, require_class_token


def timm_architecture(model: VisionTransformer) -> dict:
    """The ``build_vit`` architecture of a live timm ViT: its timm name (when timm made it) and sizes."""
    name = (getattr(model, "pretrained_cfg", None) or {}).get("architecture")
    return {
        **({"timm_model": name} if name else {}),
        "img_size": image_size(model),
        "patch_size": patch_size(model),
        "embed_dim": model.embed_dim,
        "depth": len(model.blocks),
        "num_heads": model.blocks[0].attn.num_heads,
        "num_classes": model.num_classes,
    }


@torch.no_grad()
def rebuilt(model: VisionTransformer, architecture: dict) -> VisionTransformer:
    """``model``'s weights in the ViT that ``architecture`` builds (what a saved checkpoint reloads as),
    refused unless it computes what ``model`` computes."""
    architecture = {**architecture, "explain_adapter": adapter_field(model)}
    try:
        copy = build_vit(architecture).eval()
        copy.load_state_dict(model.state_dict())
    except (RuntimeError, TypeError) as error:
        raise ExplainvecError(
            f"the model is not the ViT its architecture {architecture} describes: {error}"
        ) from error
    size = image_size(model)
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    parameter = next(model.parameters())
    expected = model.eval()(images.to(parameter.device, parameter.dtype)).float().cpu()
    if not torch.allclose(copy(images), expected, rtol=1e-4, atol=1e-5):
        raise ExplainvecError(
            f"the architecture {architecture} does not rebuild this model (other norms or activations): "
            "wrap it with base= the checkpoint it was fine-tuned from"
        )
    return copy


def wrap(
    model: nn.Module,
    class_names: list[str] | None = None,
    *,
    base: str | Path | Checkpoint | None = None,
    template: str = "a photo of a {}.",
) -> Checkpoint:
    """A loaded timm ``VisionTransformer``, ``transformers`` ``ViTForImageClassification`` or ``CLIPModel``
    as a checkpoint that :func:`explainvec.apply_vector` and ``SelfExplainingViT.from_checkpoint`` take.

    With ``base`` (the checkpoint the model was fine-tuned from) the architecture, preprocessing and base
    fingerprint are the base's, so its vectors apply without ``force``; without it the model is its own
    base, preprocessed as timm's data config (or the ``transformers`` image processor's defaults) says.
    Class names default to the base's, ``config.id2label`` or ``class_<i>``; a ``CLIPModel`` needs them
    (its zero-shot head is built from ``template``). The weights are copied (``model`` is put in eval mode).
    """
    base = load_checkpoint(base) if isinstance(base, (str, Path)) else base
    if isinstance(model, PreTrainedModel):
        converted = hf_checkpoint(model, class_names, template=template)
        vit, meta = converted.model, converted.meta
    elif isinstance(model, VisionTransformer):
        require_class_token(model, type(model).__name__)
        config, architecture = resolve_model_data_config(model), timm_architecture(model)
        vit = rebuilt(model, architecture)
        default = base.meta.class_names if base and len(base.meta.class_names) == vit.num_classes else None
        meta = CheckpointMeta(
            kind="base",
            architecture=architecture,
            class_names=class_names or default or [f"class_{i}" for i in range(vit.num_classes)],
            preprocess=Preprocess(
                image_size=image_size(vit),
                mean=tuple(config["mean"]),
                std=tuple(config["std"]),
                interpolation=config["interpolation"],
                crop_pct=config["crop_pct"],
            ),
            base_fingerprint=fingerprint(vit.state_dict()),
            training={"source": f"in-memory:{type(model).__name__}"},
        )
    else:
        raise ExplainvecError(f"{type(model).__name__} is not a timm VisionTransformer or a transformers ViT")
    if base is None:
        return Checkpoint(vit, meta)
    if grid_size(vit) != grid_size(base.model):
        raise ExplainvecError(
            f"the model has a {grid_size(vit)} patch grid, its base {grid_size(base.model)}"
        )
    architecture = {**base.meta.architecture, "num_classes": vit.num_classes}
    from_base = {"kind": "predict", "architecture": architecture, "preprocess": base.meta.preprocess}
    from_base["base_fingerprint"] = base.meta.base_fingerprint
    return Checkpoint(rebuilt(vit, architecture), meta.model_copy(update=from_base))
