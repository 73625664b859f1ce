"""Real backbones: a timm ViT by name, its weights from a local file, its preprocessing from timm."""

from __future__ import annotations

from pathlib import Path

import timm
from safetensors import SafetensorError
from timm.data import ImageNetInfo, infer_imagenet_subset, resolve_model_data_config
from timm.models.vision_transformer import VisionTransformer

from explainvec.data.preprocess import Preprocess
from explainvec.errors import FileFormatError
from explainvec.io import file_kind, non_finite
from explainvec.models.checkpoint import Checkpoint, CheckpointMeta, load_checkpoint, sidecar_path
from explainvec.models.fingerprint import fingerprint
from explainvec.models.vit import require_class_token

TIMM_PREFIX = "timm:"
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def is_timm_spec(spec: str | Path) -> bool:
    """Whether a ``--base`` value names a timm model (``timm:<name>``) rather than a checkpoint file."""
    return str(spec).startswith(TIMM_PREFIX)


def _explainvec_checkpoint(path: Path) -> bool:
    side = sidecar_path(path)
    return path.suffix == ".safetensors" and side.is_file() and "explainvec-checkpoint/" in side.read_text()


def _check_kind(weights: Path) -> None:
    """Refuse a weights file whose content is not what its name says (a pickle named .safetensors, or
    safetensors named .pt), before timm reads it."""
    kind = file_kind(weights)
    if weights.suffix == ".safetensors" and kind in ("torch", "pickle"):
        raise FileFormatError(
            f"weights {weights} is named .safetensors but holds a PyTorch pickle: rename it .pt (it is then "
            "read weights-only), or convert it to safetensors"
        )
    if weights.suffix != ".safetensors" and kind == "safetensors":
        raise FileFormatError(
            f"weights {weights} holds safetensors but is named {weights.suffix}: rename it .safetensors"
        )


def _class_names(model: VisionTransformer) -> list[str]:
    """Names of the pretrained head's classes: ImageNet synsets where timm knows the subset, else indices."""
    subset = infer_imagenet_subset(model)
    if subset is not None:
        return list(ImageNetInfo(subset).label_names())
    return [f"class_{i}" for i in range(model.num_classes)]


def _create(name: str, architecture: dict, weights: Path | None, allow_download: bool) -> VisionTransformer:
    overrides = {k: v for k, v in architecture.items() if k != "timm_model"}
    if weights is None:
        if not allow_download:
            raise ValueError(
                f"timm:{name} needs its weights: pass --weights FILE (safetensors or a .pth/.pt/.bin state "
                "dict), or --allow-download to fetch the pretrained weights from the Hugging Face Hub"
            )
        return timm.create_model(name, pretrained=True, **overrides)
    if weights.suffix not in WEIGHT_SUFFIXES:
        raise ValueError(f"weights {weights} should be one of {', '.join(WEIGHT_SUFFIXES)}")
    _check_kind(weights)
    try:  # timm reads .pth/.pt/.bin with torch.load(weights_only=True): tensors only, never arbitrary pickles
        return timm.create_model(
            name,
            pretrained=True,
            pretrained_cfg_overlay={"file": str(weights), "source": "timm"},
            **overrides,
        )
    except (RuntimeError, KeyError, OSError, ValueError, SafetensorError) as error:
        reason = " ".join(line.strip() for line in str(error).splitlines()[:2])[:300]
        raise FileFormatError(
            f"cannot load {weights} into timm:{name} (weights-only load): {reason}"
        ) from error


def timm_base(
    spec: str,
    *,
    weights: str | Path | None = None,
    allow_download: bool = False,
    image_size: int | None = None,
) -> Checkpoint:
    """A base checkpoint of the timm ViT ``timm:<name>`` with weights from a local file.

    ``weights`` is a timm/Hugging Face ``.safetensors`` file or a ``.pth/.pt/.bin`` state dict (read with
    ``torch.load(weights_only=True)``; position embeddings are resampled by timm when ``image_size``
    differs from the file's), or an explainvec checkpoint of the same model. Nothing is downloaded unless
    ``allow_download``. Preprocessing (mean, std, interpolation, crop) comes from timm's data config.
    """
    name = spec[len(TIMM_PREFIX) :] if is_timm_spec(spec) else spec
    if name not in timm.list_models(name) and name.split(".")[0] not in timm.list_models():
        raise ValueError(f"timm has no model named {name!r} (see timm.list_models('vit_*'))")
    weights = Path(weights) if weights is not None else None
    if weights is not None and not weights.is_file():
        raise FileNotFoundError(f"weights file {weights} does not exist")
    if weights is not None and _explainvec_checkpoint(weights):
        checkpoint = load_checkpoint(weights)
        if checkpoint.meta.architecture.get("timm_model") != name:
            raise ValueError(f"{weights} holds {checkpoint.meta.architecture}, not timm:{name}")
        return checkpoint
    architecture: dict = {"timm_model": name}
    if image_size is not None:
        architecture["img_size"] = image_size
    model = _create(name, architecture, weights, allow_download)
    require_class_token(model, f"timm:{name}")
    architecture["num_classes"] = model.num_classes
    config = resolve_model_data_config(model)
    preprocess = Preprocess(
        image_size=int(model.patch_embed.img_size[0]),
        mean=tuple(config["mean"]),
        std=tuple(config["std"]),
        interpolation=config["interpolation"],
        crop_pct=config["crop_pct"],
    )
    state = model.state_dict()
    if (bad := non_finite(state)) is not None:
        raise ValueError(f"{weights} holds NaN or Inf weights (tensor {bad!r})")
    meta = CheckpointMeta(
        kind="base",
        architecture=architecture,
        class_names=_class_names(model),
        preprocess=preprocess,
        base_fingerprint=fingerprint(state),
        training={"source": f"timm:{name}", "weights": str(weights) if weights else "downloaded"},
    )
    return Checkpoint(model.eval(), meta)


def load_base(
    spec: str | Path,
    *,
    weights: str | Path | None = None,
    allow_download: bool = False,
    image_size: int | None = None,
) -> Checkpoint:
    """What ``--base`` names: an explainvec checkpoint file, or ``timm:<name>`` with its weights."""
    if is_timm_spec(spec):
        return timm_base(str(spec), weights=weights, allow_download=allow_download, image_size=image_size)
    if weights is not None or image_size is not None:
        raise ValueError("--weights and --img-size go with --base timm:<name>, not with a checkpoint file")
    return load_checkpoint(spec)
