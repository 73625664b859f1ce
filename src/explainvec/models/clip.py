"""CLIP backbones: open_clip's image tower run as a timm ViT, with a zero-shot head from class-name prompts.

The tower is a timm ``VisionTransformer`` (weights converted by timm's own open_clip converter), so
attention masking and the patch read-out work as on any other base. The text tower is used once, to
build the head, and is not kept.
"""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import open_clip
import timm
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from timm.models import load_state_dict
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from torch import nn

from explainvec.data.preprocess import Preprocess
from explainvec.models.checkpoint import Checkpoint, CheckpointMeta
from explainvec.models.fingerprint import fingerprint
from explainvec.models.vit import build_vit, patch_size
from explainvec.models.vit import image_size as input_size

TIMM_CLIP_SIZES = {
    256: "xsmall",
    512: "medium",
    640: "betwixt",
    768: "base",
    1024: "large",
    1280: "huge",
    1408: "giant",
    1664: "gigantic",
}
"""timm's size word for a CLIP image tower of each width: ``vit_<size>_patch<p>_clip[_quickgelu]_<img>``."""

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
TOWER_TOLERANCE = 1e-4
"""Largest relative difference allowed between the timm tower and open_clip's ``encode_image``."""


def clip_base(
    model: str,
    weights: Path,
    class_names: list[str],
    *,
    template: str = "a photo of a {}.",
    image_size: int | None = None,
) -> Checkpoint:
    """A base checkpoint from an open_clip CLIP model: its image tower as a timm ViT with a zero-shot head.

    ``model`` is a built-in open_clip name (``"ViT-B-32"``) or an open_clip model-config JSON file;
    ``weights`` a local open_clip checkpoint (safetensors, or a ``torch.save`` state dict read with
    ``weights_only=True``). Nothing is downloaded. The head is built once from the prompts
    ``template.format(name)`` with open_clip's text tower: ``weight = s · normalize(T) @ P^T``, bias 0,
    with ``s`` the logit scale, ``T`` the text embeddings and ``P`` the image projection, so
    ``model(x) = s · encode_image(x) @ normalize(T)^T``. The image embedding is deliberately not
    L2-normalised: that is a positive factor per image, which changes no prediction, but would make the
    head non-linear, and the patch read-out needs a linear head. ``image_size`` runs the tower at
    another input size (positional embeddings resampled by timm).
    """
    if not class_names:
        raise ValueError("a zero-shot head needs at least one class name")
    if "{}" not in template:
        raise ValueError(f"the prompt template {template!r} has no '{{}}' for the class name")
    config, preprocess_cfg = clip_config(model)
    clip = open_clip_model(config, Path(weights))
    tower = image_tower(config, clip)
    text = text_embeddings(clip, text_tokenizer(config), [template.format(name) for name in class_names])
    logit_scale = clip.logit_scale.exp().item()
    set_zero_shot_head(tower, text, logit_scale)
    if image_size is not None and image_size != input_size(tower):
        if image_size < 1 or image_size % patch_size(tower):
            raise ValueError(
                f"image size {image_size} is not a positive multiple of patch size {patch_size(tower)}"
            )
        tower.set_input_size(img_size=image_size)
    size = input_size(tower)
    preprocess_cfg = {
        "mean": open_clip.OPENAI_DATASET_MEAN,
        "std": open_clip.OPENAI_DATASET_STD,
        "interpolation": "bicubic",
        **preprocess_cfg,
    }
    meta = CheckpointMeta(
        kind="base",
        architecture={**clip_architecture(config), "img_size": size, "num_classes": len(class_names)},
        class_names=class_names,
        preprocess=Preprocess(
            image_size=size,
            mean=tuple(preprocess_cfg["mean"]),
            std=tuple(preprocess_cfg["std"]),
            interpolation=preprocess_cfg["interpolation"],
            crop_pct=1.0,
        ),
        base_fingerprint=fingerprint(tower.state_dict()),
        training={
            "zero_shot_head": {
                "model": Path(model).name if model.endswith(".json") else model,
                "weights": Path(weights).name,
                "template": template,
                "logit_scale": logit_scale,
            }
        },
    )
    return Checkpoint(tower, meta)


def clip_config(model: str) -> tuple[dict, dict]:
    """The open_clip model config of ``model`` and its preprocessing overrides (often none).

    ``model`` is a built-in open_clip name or a JSON file: a ``model_configs/*.json``-style config
    (``embed_dim``, ``vision_cfg``, ``text_cfg``) or an ``open_clip_config.json`` (``model_cfg`` and
    ``preprocess_cfg``). Only open_clip's own ViT image tower and its own tokenizer are accepted.
    """
    if model.endswith(".json"):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"open_clip model config {path} does not exist")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"open_clip model config {path} is not valid JSON: {error}") from error
        raw = raw if isinstance(raw, dict) else {}
        config, preprocess_cfg = raw.get("model_cfg", raw), raw.get("preprocess_cfg", {})
    elif model in open_clip.list_models():
        config, preprocess_cfg = open_clip.get_model_config(model), {}
    else:
        raise ValueError(
            f"unknown open_clip model {model!r}: give a built-in name (open_clip.list_models()) "
            "or a model-config JSON file"
        )
    if not all(key in config for key in ("embed_dim", "vision_cfg", "text_cfg")):
        raise ValueError(f"{model} is not an open_clip model config (embed_dim, vision_cfg, text_cfg)")
    vision, text = config["vision_cfg"], config["text_cfg"]
    if "timm_model_name" in vision or not isinstance(vision.get("layers", 12), int):
        raise ValueError(f"{model}: explainvec runs open_clip's own ViT image tower, not ResNet or timm ones")
    if "hf_model_name" in text or "hf_tokenizer_name" in text:
        raise ValueError(f"{model}: a Hugging Face text tower or tokenizer is not supported (no downloads)")
    return config, preprocess_cfg


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a local open_clip checkpoint: safetensors, or a ``torch.save`` file read with
    ``weights_only=True`` (pickled objects are refused). A ``state_dict`` entry and a ``module.`` prefix
    (DDP) are unwrapped."""
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ValueError(f"weights file {path} should end in one of {', '.join(WEIGHT_SUFFIXES)}")
    try:  # timm's reader: safetensors, or torch.load(weights_only=True); unwraps nesting and `module.`
        state = load_state_dict(str(path), use_ema=False, weights_only=True)
    except (SafetensorError, pickle.UnpicklingError, RuntimeError) as error:
        raise ValueError(f"cannot read {path} as tensors (pickled objects are refused): {error}") from error
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return state


def open_clip_model(config: dict, weights: Path) -> nn.Module:
    """open_clip's model of ``config`` (eval mode) with the weights of the file ``weights``."""
    config = copy.deepcopy(config)
    model_class = open_clip.CustomTextCLIP if config.pop("custom_text", False) else open_clip.CLIP
    try:
        model = model_class(**config)
    except TypeError as error:
        raise ValueError(f"not an open_clip CLIP model config: {error}") from error
    state = read_state_dict(weights)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{weights} does not hold the weights of this open_clip model: {error}") from error
    return model.eval()


def clip_architecture(config: dict) -> dict:
    """The ``timm_model`` architecture (for ``build_vit``) of the image tower of an open_clip ``config``,
    with the image projection as the head (``num_classes`` = the embedding width).

    The timm name is the CLIP variant of the same size where timm has one (``ViT-B-32`` →
    ``vit_base_patch32_clip_224``), picked by the config's ``quick_gelu``; the sizes are always passed
    as overrides, so any width, depth and image size work.
    """
    vision = open_clip.CLIPVisionCfg(**config["vision_cfg"])
    sizes = (vision.image_size,) * 2 if isinstance(vision.image_size, int) else tuple(vision.image_size)
    patches = (vision.patch_size,) * 2 if isinstance(vision.patch_size, int) else tuple(vision.patch_size)
    if sizes[0] != sizes[1] or patches[0] != patches[1]:
        raise ValueError(f"explainvec needs square images and patches, not {sizes} and {patches}")
    quick = "_quickgelu" if config.get("quick_gelu") else ""
    name = f"vit_{TIMM_CLIP_SIZES.get(vision.width)}_patch{patches[0]}_clip{quick}_{sizes[0]}"
    return {
        "timm_model": name if timm.is_model(name) else f"vit_base_patch16_clip{quick}_224",
        "img_size": sizes[0],
        "patch_size": patches[0],
        "embed_dim": vision.width,
        "depth": vision.layers,
        "num_heads": vision.width // vision.head_width,
        "mlp_ratio": vision.mlp_ratio,
        "num_classes": config["embed_dim"],
    }


@torch.no_grad()
def image_tower(config: dict, clip: nn.Module) -> VisionTransformer:
    """``clip``'s image tower as a timm ``VisionTransformer``, converted by timm (the image projection
    becomes the head, bias 0). A tower whose output differs from ``clip.encode_image`` is refused."""
    tower = build_vit(clip_architecture(config)).eval()
    try:
        tower.load_state_dict(checkpoint_filter_fn(clip.state_dict(), tower))
    except RuntimeError as error:
        raise ValueError(f"this open_clip image tower has no timm equivalent: {error}") from error
    size = input_size(tower)
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    reference = clip.encode_image(images)
    difference = ((tower(images) - reference).abs().max() / reference.abs().max()).item()
    if difference > TOWER_TOLERANCE:
        raise ValueError(
            f"the timm tower differs from open_clip's encode_image by {difference:.1e} (relative): "
            "this image tower's pooling or norms are not supported"
        )
    return tower


def text_tokenizer(config: dict) -> open_clip.SimpleTokenizer:
    """open_clip's default tokenizer with the config's context length (bundled vocabulary, no download)."""
    text = config["text_cfg"]
    return open_clip.SimpleTokenizer(
        context_length=text.get("context_length", 77), **text.get("tokenizer_kwargs", {})
    )


@torch.no_grad()
def text_embeddings(
    clip: nn.Module, tokenizer: open_clip.SimpleTokenizer, prompts: list[str], batch_size: int = 256
) -> torch.Tensor:
    """L2-normalised text embeddings ``[len(prompts), E]`` of open_clip's text tower."""
    embeddings = [
        clip.encode_text(tokenizer(prompts[i : i + batch_size])) for i in range(0, len(prompts), batch_size)
    ]
    return F.normalize(torch.cat(embeddings), dim=-1)


@torch.no_grad()
def set_zero_shot_head(tower: VisionTransformer, text: torch.Tensor, logit_scale: float) -> None:
    """Replace the projection head ``[E, D]`` by the zero-shot head ``logit_scale · text @ projection``
    ``[C, D]`` (bias 0) in place."""
    projection = tower.head.weight.clone()
    tower.reset_classifier(len(text))
    tower.head.weight.copy_(logit_scale * text @ projection)
    tower.head.bias.zero_()
