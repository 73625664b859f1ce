"""Hugging Face ``transformers`` ViTs run as timm ViTs: ``ViTForImageClassification``, and ``CLIPModel``'s
image tower with a zero-shot head, from a local ``save_pretrained`` folder or a model already in memory.

The weights are renamed to timm's (one filter function, :func:`timm_state_dict`) and the converted model is
run beside the ``transformers`` forward on random images and refused if they differ. Nothing downloads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from transformers import AutoConfig, CLIPModel, PretrainedConfig, PreTrainedModel, ViTForImageClassification

from explainvec.data.preprocess import Preprocess
from explainvec.errors import ExplainvecError, FileFormatError
from explainvec.io import non_finite
from explainvec.models.checkpoint import Checkpoint, CheckpointMeta
from explainvec.models.clip import TOWER_TOLERANCE, clip_architecture, set_zero_shot_head
from explainvec.models.fingerprint import fingerprint
from explainvec.models.vit import build_vit

HF_PREFIX = "hf:"
MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    "ViTForImageClassification": ViTForImageClassification,
    "CLIPModel": CLIPModel,
}
"""The ``transformers`` architectures explainvec imports, by the name ``config.architectures`` gives."""

ACTIVATIONS = {
    "gelu": "gelu",
    "quick_gelu": "quick_gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
}
"""``hidden_act`` of a ``transformers`` config → timm's ``act_layer``."""

RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
"""PIL resampling codes of a ``preprocessor_config.json`` → timm interpolation names."""

CLIP_VOCABULARY = 49408
"""Vocabulary size of CLIP's BPE tokenizer (bundled with open_clip, used for the zero-shot prompts)."""

_QKV = re.compile(
    r"(?:vit\.layers|vision_model\.encoder\.layers)\.(\d+)\.(?:self_attn|attention)\.([qkv])_proj\.(\w+)"
)
_RENAMES = [
    (re.compile(pattern), target)
    for pattern, target in [
        (r"vit\.embeddings\.cls_token", "cls_token"),
        (r"vit\.embeddings\.position_embeddings", "pos_embed"),
        (r"vit\.embeddings\.patch_embeddings\.projection\.(\w+)", r"patch_embed.proj.\1"),
        (r"vit\.layers\.(\d+)\.layernorm_before\.(\w+)", r"blocks.\1.norm1.\2"),
        (r"vit\.layers\.(\d+)\.attention\.o_proj\.(\w+)", r"blocks.\1.attn.proj.\2"),
        (r"vit\.layers\.(\d+)\.layernorm_after\.(\w+)", r"blocks.\1.norm2.\2"),
        (r"vit\.layers\.(\d+)\.mlp\.(fc[12])\.(\w+)", r"blocks.\1.mlp.\2.\3"),
        (r"vit\.layernorm\.(\w+)", r"norm.\1"),
        (r"classifier\.(\w+)", r"head.\1"),
        (r"vision_model\.embeddings\.class_embedding", "cls_token"),
        (r"vision_model\.embeddings\.position_embedding\.weight", "pos_embed"),
        (r"vision_model\.embeddings\.patch_embedding\.weight", "patch_embed.proj.weight"),
        (r"vision_model\.pre_layrnorm\.(\w+)", r"norm_pre.\1"),
        (r"vision_model\.encoder\.layers\.(\d+)\.layer_norm1\.(\w+)", r"blocks.\1.norm1.\2"),
        (r"vision_model\.encoder\.layers\.(\d+)\.self_attn\.out_proj\.(\w+)", r"blocks.\1.attn.proj.\2"),
        (r"vision_model\.encoder\.layers\.(\d+)\.layer_norm2\.(\w+)", r"blocks.\1.norm2.\2"),
        (r"vision_model\.encoder\.layers\.(\d+)\.mlp\.(fc[12])\.(\w+)", r"blocks.\1.mlp.\2.\3"),
        (r"vision_model\.post_layernorm\.(\w+)", r"norm.\1"),
        (r"visual_projection\.weight", "head.weight"),
    ]
]
"""``transformers`` parameter names (ViT and CLIP's vision tower) → timm ``VisionTransformer`` names."""


def is_hf_spec(spec: str | Path) -> bool:
    """Whether a value names a Hugging Face ``save_pretrained`` folder (``hf:<folder>``)."""
    return str(spec).startswith(HF_PREFIX)


def timm_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``transformers`` ViT or CLIP state dict renamed to timm's: q, k, v joined into ``qkv``, CLIP's class
    and position embeddings given a batch axis, its bias-free image projection a zero bias. Parameters
    timm's ViT has no place for (CLIP's text tower) are left out."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in state.items():
        if match := _QKV.fullmatch(name):
            block, part, kind = match.groups()
            qkv.setdefault(f"blocks.{block}.attn.qkv.{kind}", {})[part] = tensor
            continue
        for pattern, target in _RENAMES:
            if pattern.fullmatch(name):
                out[pattern.sub(target, name)] = tensor
                break
    out.update({name: torch.cat([parts["q"], parts["k"], parts["v"]]) for name, parts in qkv.items()})
    if "vision_model.embeddings.class_embedding" in state:
        out["cls_token"] = out["cls_token"].reshape(1, 1, -1)
        out["pos_embed"] = out["pos_embed"][None]
        out["head.bias"] = out["head.weight"].new_zeros(out["head.weight"].shape[0])
    return out


def activation(config: PretrainedConfig) -> str:
    """timm's ``act_layer`` for the config's ``hidden_act`` (refused where timm has none)."""
    if config.hidden_act not in ACTIVATIONS:
        raise ExplainvecError(
            f"hidden_act {config.hidden_act!r} has no timm equivalent ({', '.join(ACTIVATIONS)})"
        )
    return ACTIVATIONS[config.hidden_act]


def vit_architecture(config: PretrainedConfig) -> dict:
    """The timm ``VisionTransformer`` keywords of a ``transformers`` ``ViTConfig``."""
    return {
        "img_size": config.image_size,
        "patch_size": config.patch_size,
        "embed_dim": config.hidden_size,
        "depth": config.num_hidden_layers,
        "num_heads": config.num_attention_heads,
        "mlp_ratio": config.intermediate_size / config.hidden_size,
        "qkv_bias": config.qkv_bias,
        "act_layer": activation(config),
        "norm_eps": config.layer_norm_eps,
        "num_classes": config.num_labels,
    }


def clip_vision_architecture(config: PretrainedConfig) -> dict:
    """The timm CLIP tower (``timm_model`` and overrides) of a ``transformers`` ``CLIPConfig``'s vision part,
    named as for open_clip models (:func:`explainvec.models.clip.clip_architecture`)."""
    vision = config.vision_config
    quick = activation(vision) == "quick_gelu"
    if not quick and activation(vision) != "gelu":
        raise ExplainvecError(
            f"a CLIP tower with hidden_act {vision.hidden_act!r} is not supported (gelu, quick_gelu)"
        )
    architecture = clip_architecture(
        {
            "embed_dim": config.projection_dim,
            "quick_gelu": quick,
            "vision_cfg": {
                "image_size": vision.image_size,
                "patch_size": vision.patch_size,
                "width": vision.hidden_size,
                "layers": vision.num_hidden_layers,
                "head_width": vision.hidden_size // vision.num_attention_heads,
                "mlp_ratio": vision.intermediate_size / vision.hidden_size,
            },
        }
    )
    return {**architecture, "norm_eps": vision.layer_norm_eps}


@torch.no_grad()
def reference_output(model: PreTrainedModel, images: torch.Tensor) -> torch.Tensor:
    """What the converted tower must compute: the ViT's logits, or CLIP's projected image embedding."""
    if isinstance(model, CLIPModel):
        return model.visual_projection(model.vision_model(pixel_values=images).pooler_output)
    return model(pixel_values=images).logits


@torch.no_grad()
def timm_tower(model: PreTrainedModel, architecture: dict) -> VisionTransformer:
    """``model`` as the timm ViT of ``architecture`` (float32, on the CPU); refused if its output differs from
    the ``transformers`` forward on random images (relative 1e-4), run where and in the dtype ``model`` is."""
    tower = build_vit(architecture).eval()
    try:
        tower.load_state_dict(timm_state_dict({k: v.float().cpu() for k, v in model.state_dict().items()}))
    except RuntimeError as error:
        raise ExplainvecError(f"this {type(model).__name__} has no timm equivalent: {error}") from error
    size, parameter = architecture["img_size"], next(model.parameters())
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    reference = reference_output(model.eval(), images.to(parameter.device, parameter.dtype)).float().cpu()
    difference = ((tower(images) - reference).abs().max() / reference.abs().max()).item()
    if difference > TOWER_TOLERANCE:
        raise ExplainvecError(
            f"the timm ViT differs from the {type(model).__name__} forward by {difference:.1e}"
        )
    return tower


@torch.no_grad()
def clip_text_embeddings(model: CLIPModel, prompts: list[str]) -> torch.Tensor:
    """L2-normalised projected text embeddings ``[len(prompts), E]`` of the CLIP text tower, the prompts
    tokenized by CLIP's BPE tokenizer as bundled with open_clip (no download)."""
    text = model.config.text_config
    if text.vocab_size != CLIP_VOCABULARY:
        raise ExplainvecError(
            f"the text tower's vocabulary ({text.vocab_size}) is not CLIP's BPE ({CLIP_VOCABULARY})"
        )
    tokens = open_clip.SimpleTokenizer(context_length=text.max_position_embeddings)(prompts).to(model.device)
    pooled = model.text_model(input_ids=tokens, attention_mask=tokens != 0).pooler_output
    return F.normalize(model.text_projection(pooled).float(), dim=-1).cpu()


def model_class_names(model: PreTrainedModel, class_names: list[str] | None) -> list[str]:
    """The class names: ``config.id2label`` of a ViT classifier (unless given), or the names a CLIP
    zero-shot head is built from (required)."""
    if isinstance(model, CLIPModel):
        if not class_names:
            raise ExplainvecError("a CLIPModel needs the class names of its zero-shot head (--classes)")
        return class_names
    return class_names or [model.config.id2label[i] for i in range(model.config.num_labels)]


def hf_preprocess(model_type: str, image_size: int, processor: dict | None = None) -> Preprocess:
    """Preprocessing from a ``preprocessor_config.json`` (as a dict; ``None``: the ``transformers`` image
    processor's defaults for the model type). ``shortest_edge`` resizing with a centre crop becomes timm's
    ``crop_pct``; a ``height × width`` resize becomes a resize to the model's size (timm keeps the aspect
    ratio and crops, the ViT processor squashes: the same on square images)."""
    clip = model_type == "clip"
    processor = processor or {}
    mean = processor.get("image_mean", open_clip.OPENAI_DATASET_MEAN if clip else (0.5, 0.5, 0.5))
    std = processor.get("image_std", open_clip.OPENAI_DATASET_STD if clip else (0.5, 0.5, 0.5))
    if not processor.get("do_normalize", True):
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    size = processor.get("size", {"shortest_edge": image_size} if clip else {"height": image_size})
    crop = (
        processor.get("crop_size", {"height": image_size}) if processor.get("do_center_crop", clip) else None
    )
    resized = size.get("shortest_edge", size.get("height"))
    final = crop["height"] if crop else resized
    if final != image_size:
        raise ExplainvecError(f"the preprocessor makes {final} px images, the model takes {image_size} px")
    resample = processor.get("resample", 3 if clip else 2)
    return Preprocess(
        image_size=image_size,
        mean=tuple(mean),
        std=tuple(std),
        interpolation=RESAMPLE.get(resample, "bicubic"),
        crop_pct=final / resized if crop else 1.0,
    )


def hf_checkpoint(
    model: PreTrainedModel,
    class_names: list[str] | None = None,
    *,
    template: str = "a photo of a {}.",
    preprocess: Preprocess | None = None,
) -> Checkpoint:
    """A ``transformers`` ``ViTForImageClassification`` or ``CLIPModel`` already in memory as a base
    checkpoint: a timm ViT with the same weights (a CLIP image tower gets the zero-shot head of
    ``class_names`` and ``template``, as :func:`explainvec.models.clip.clip_base` builds it). Class names
    default to ``config.id2label``; ``preprocess`` to the image processor's defaults."""
    if not isinstance(model, tuple(MODEL_CLASSES.values())):
        raise ExplainvecError(
            f"{type(model).__name__} is not a ViT explainvec converts: give a {' or a '.join(MODEL_CLASSES)}"
        )
    config = model.config
    names = model_class_names(model, class_names)
    training: dict = {"source": f"transformers:{type(model).__name__}"}
    if isinstance(model, CLIPModel):
        if "{}" not in template:
            raise ExplainvecError(f"the prompt template {template!r} has no '{{}}' for the class name")
        tower = timm_tower(model, clip_vision_architecture(config))
        logit_scale = model.logit_scale.exp().item()
        set_zero_shot_head(
            tower, clip_text_embeddings(model, [template.format(n) for n in names]), logit_scale
        )
        training["zero_shot_head"] = {
            "model": "transformers:CLIPModel",
            "template": template,
            "logit_scale": logit_scale,
        }
        architecture = {**clip_vision_architecture(config), "num_classes": len(names)}
    else:
        if len(names) != config.num_labels:
            raise ExplainvecError(f"{len(names)} class names for a classifier of {config.num_labels} classes")
        architecture = vit_architecture(config)
        tower = timm_tower(model, architecture)
    state = tower.state_dict()
    if (bad := non_finite(state)) is not None:
        raise ExplainvecError(f"the model holds NaN or Inf weights (tensor {bad!r})")
    meta = CheckpointMeta(
        kind="base",
        architecture=architecture,
        class_names=names,
        preprocess=preprocess or hf_preprocess(config.model_type, architecture["img_size"]),
        base_fingerprint=fingerprint(state),
        training=training,
    )
    return Checkpoint(tower, meta)


def hf_base(
    spec: str | Path, class_names: list[str] | None = None, *, template: str = "a photo of a {}."
) -> Checkpoint:
    """A base checkpoint from ``hf:<folder>``, a local ``save_pretrained`` folder (``config.json`` and
    ``model.safetensors``; pickled weights are refused) of a ``ViTForImageClassification`` or a
    ``CLIPModel``, preprocessed as its ``preprocessor_config.json`` says. Nothing downloads."""
    folder = Path(str(spec).removeprefix(HF_PREFIX))
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a save_pretrained folder (no config.json)")
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    names = [name for name in config.architectures or [] if name in MODEL_CLASSES]
    if not names:
        held = ", ".join(config.architectures or [config.model_type])
        raise ExplainvecError(
            f"{folder} holds a {held}: explainvec imports a ViTForImageClassification or a CLIPModel "
            "(a ViT classifying from its class token)"
        )
    try:
        model = MODEL_CLASSES[names[0]].from_pretrained(
            folder, local_files_only=True, use_safetensors=True, dtype=torch.float32
        )
    except OSError as error:
        raise FileFormatError(f"cannot load {folder} (safetensors weights only): {error}") from error
    processor_file = folder / "preprocessor_config.json"
    processor = json.loads(processor_file.read_text()) if processor_file.is_file() else None
    image_size = (config.vision_config if names[0] == "CLIPModel" else config).image_size
    checkpoint = hf_checkpoint(
        model,
        class_names,
        template=template,
        preprocess=hf_preprocess(config.model_type, image_size, processor),
    )
    checkpoint.meta.training.source = f"hf:{folder.name}"
    checkpoint.meta.training.weights = "model.safetensors"
    return checkpoint
