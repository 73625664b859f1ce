"""CLIP bases: a randomly initialised tiny open_clip model saved to files, turned into a timm ViT with a
zero-shot head, and checked against open_clip's own encode_image / encode_text."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import explainvec
from explainvec.data.domains import GEO
from explainvec.models.checkpoint import load_checkpoint, save_checkpoint
from explainvec.models.clip import clip_architecture, clip_base, image_tower
from explainvec.models.fingerprint import fingerprint
from explainvec.models.masking import masked_logits
from explainvec.models.vit import embed
from explainvec.training.config import TrainConfig
from explainvec.training.explain import train_explainer
from explainvec.training.finetune import finetune

TINY = {
    "embed_dim": 48,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
NAMES = ["cat", "dog", "car"]


def write_config(folder, name: str, config: dict) -> str:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny open_clip CLIP (random init), its config file and its weights in both formats."""
    folder = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    clip = open_clip.CLIP(**TINY).eval()
    weights = {"safetensors": folder / "tiny.safetensors", "pt": folder / "tiny.pt"}
    save_file(clip.state_dict(), str(weights["safetensors"]))
    torch.save(clip.state_dict(), weights["pt"])
    return {"folder": folder, "config": write_config(folder, "tiny", TINY), "clip": clip, "weights": weights}


@torch.no_grad()
def open_clip_logits(clip, images, names, template="a photo of a {}.", normalise_images=False):
    """Zero-shot logits the open_clip way: s · encode_image(x) @ normalize(encode_text(prompts)).T."""
    text = clip.encode_text(open_clip.get_tokenizer()([template.format(n) for n in names]))
    image = clip.encode_image(images)
    image = F.normalize(image, dim=-1) if normalise_images else image
    return clip.logit_scale.exp() * image @ F.normalize(text, dim=-1).T


def images(n=8, size=32, seed=1):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_zero_shot_head_is_stored_and_reloads_with_open_clip_logits(tiny, tmp_path, fmt):
    base = clip_base(tiny["config"], tiny["weights"][fmt], NAMES)
    path = save_checkpoint(tmp_path / "clip.safetensors", base)
    loaded = load_checkpoint(path)
    x = images()
    with torch.no_grad():
        logits = loaded.model(x)
    reference = open_clip_logits(tiny["clip"], x, NAMES)
    torch.testing.assert_close(logits, reference, atol=1e-4, rtol=0)
    # Image-side normalisation is left out of the head: same prediction as open_clip's zero-shot.
    normalised = open_clip_logits(tiny["clip"], x, NAMES, normalise_images=True)
    assert torch.equal(logits.argmax(-1), normalised.argmax(-1))
    meta = loaded.meta
    assert meta.kind == "base" and meta.class_names == NAMES
    assert meta.architecture["timm_model"] == "vit_base_patch16_clip_224"
    assert meta.architecture["num_classes"] == 3 and meta.architecture["embed_dim"] == 64
    assert meta.preprocess.image_size == 32 and meta.preprocess.mean == open_clip.OPENAI_DATASET_MEAN
    assert meta.preprocess.std == open_clip.OPENAI_DATASET_STD and meta.preprocess.crop_pct == 1.0
    head = meta.training.zero_shot_head
    assert head["template"] == "a photo of a {}." and head["model"] == "tiny.json"
    assert head["weights"] == f"tiny.{fmt}"  # file names only: no local paths in the sidecar
    assert head["logit_scale"] == pytest.approx(tiny["clip"].logit_scale.exp().item())
    assert meta.base_fingerprint == fingerprint(loaded.model.state_dict())
    assert torch.equal(loaded.model.head.bias, torch.zeros(3))


def test_both_weight_formats_give_the_same_base(tiny):
    a = clip_base(tiny["config"], tiny["weights"]["safetensors"], NAMES)
    b = clip_base(tiny["config"], tiny["weights"]["pt"], NAMES)
    assert a.meta.base_fingerprint == b.meta.base_fingerprint


def test_template_changes_the_head(tiny):
    a = clip_base(tiny["config"], tiny["weights"]["safetensors"], NAMES)
    b = clip_base(tiny["config"], tiny["weights"]["safetensors"], NAMES, template="{}")
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(
            b.model(x), open_clip_logits(tiny["clip"], x, NAMES, "{}"), atol=1e-4, rtol=0
        )
    assert not torch.equal(a.model.head.weight, b.model.head.weight)


def test_image_size_override_matches_open_clip_at_that_size(tiny, tmp_path):
    base = clip_base(tiny["config"], tiny["weights"]["safetensors"], NAMES, image_size=48)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "clip48.safetensors", base))
    assert loaded.meta.architecture["img_size"] == 48 and loaded.meta.preprocess.image_size == 48
    # open_clip built at 48 px resamples the positional embeddings itself when loading the weights.
    config = {**TINY, "vision_cfg": {**TINY["vision_cfg"], "image_size": 48}}
    clip48 = open_clip.CLIP(**config).eval()
    open_clip.load_checkpoint(clip48, str(tiny["weights"]["safetensors"]))
    x = images(size=48)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), open_clip_logits(clip48, x, NAMES), atol=1e-4, rtol=0)


def test_attention_masking_equals_dropping_patches(tiny):
    model = clip_base(tiny["config"], tiny["weights"]["safetensors"], NAMES).model
    x = images(n=2)
    keep = torch.zeros(2, 16, dtype=torch.bool)
    keep[0, [0, 5, 6, 15]] = True
    keep[1, 3:12] = True
    with torch.no_grad():
        masked = masked_logits(model, x, keep)
        for i in range(2):
            tokens = embed(model, x[i : i + 1])
            kept = torch.cat([tokens[:, :1], tokens[:, 1:][:, keep[i]]], dim=1)
            dropped = model.forward_head(model.norm(model.blocks(kept)))
            torch.testing.assert_close(masked[i : i + 1], dropped, atol=1e-5, rtol=1e-5)


def test_self_explaining_wrapper_runs_on_a_clip_base(tiny, tmp_path):
    path = save_checkpoint(
        tmp_path / "clip.safetensors", clip_base(tiny["config"], tiny["weights"]["pt"], NAMES)
    )
    model = explainvec.load(path)
    x = images()
    with torch.no_grad():
        out = model(x)
    assert out.attributions.shape == (8, 16, 3) and out.grid == (4, 4)
    torch.testing.assert_close(out.logits, open_clip_logits(tiny["clip"], x, NAMES), atol=1e-4, rtol=0)
    totals = model.values(out.logits) - model.empty_value()
    # The per-patch read-outs carry the logit scale (~14), so float32 rounding of their sum is ~1e-5.
    torch.testing.assert_close(out.attributions.sum(1), totals, atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def geo(tiny):
    """A CLIP base whose zero-shot head has geo's classes, and a one-epoch fine-tune of it on geo."""
    base = clip_base(tiny["config"], tiny["weights"]["safetensors"], list(GEO))
    config = TrainConfig(epochs=1, train_size=32, eval_size=16, batch_size=16)
    assert not config.freeze_head
    return base, finetune(base, "synthetic:geo", config), config


def test_finetune_keeps_the_zero_shot_head_frozen(geo):
    base, tuned, _ = geo
    assert torch.equal(tuned.model.head.weight, base.model.head.weight)
    assert torch.equal(tuned.model.head.bias, base.model.head.bias)
    assert not torch.equal(tuned.model.blocks[0].attn.qkv.weight, base.model.blocks[0].attn.qkv.weight)
    assert tuned.meta.training.config["freeze_head"] is True
    assert tuned.meta.base_fingerprint == base.meta.base_fingerprint


def test_train_explainer_keeps_the_zero_shot_head_frozen(geo):
    base, tuned, config = geo
    explainer = train_explainer(base, tuned, "synthetic:geo", config, num_coalitions=4)
    assert torch.equal(explainer.model.head.weight, base.model.head.weight)
    assert not torch.equal(explainer.model.blocks[0].attn.qkv.weight, base.model.blocks[0].attn.qkv.weight)
    assert explainer.meta.training.config["freeze_head"] is True


def test_finetune_refuses_data_with_other_classes_than_the_zero_shot_head(tiny):
    base = clip_base(tiny["config"], tiny["weights"]["safetensors"], list(reversed(GEO)))
    with pytest.raises(ValueError, match="build the CLIP base with the data's class names"):
        finetune(base, "synthetic:geo", TrainConfig(epochs=1, train_size=16, eval_size=16))


def test_refusals(tiny):
    folder, config, weights = tiny["folder"], tiny["config"], tiny["weights"]["safetensors"]
    with pytest.raises(ValueError, match="unknown open_clip model"):
        clip_base("ViT-Nope-1", weights, NAMES)
    with pytest.raises(ValueError, match="no '\\{\\}'"):
        clip_base(config, weights, NAMES, template="a photo")
    with pytest.raises(ValueError, match="ResNet or timm"):
        clip_base("RN50", weights, NAMES)
    with pytest.raises(FileNotFoundError):
        clip_base(config, folder / "missing.safetensors", NAMES)
    with pytest.raises(ValueError, match="positive multiple of patch size 8"):
        clip_base(config, weights, NAMES, image_size=36)
    npz = folder / "tiny.npz"
    npz.write_bytes(weights.read_bytes())
    with pytest.raises(ValueError, match="should end in"):
        clip_base(config, npz, NAMES)
    # A pickled module is never unpickled.
    pickled = folder / "module.pt"
    torch.save(tiny["clip"], pickled)
    with pytest.raises(ValueError, match="pickled objects are refused"):
        clip_base(config, pickled, NAMES)
    # Weights of another shape.
    wider = {**TINY, "vision_cfg": {**TINY["vision_cfg"], "width": 96}}
    with pytest.raises(ValueError, match="does not hold the weights"):
        clip_base(write_config(folder, "wider", wider), weights, NAMES)
    # Same weights, but a tower timm's ViT does not compute (mean pooling): caught numerically.
    pooled = {**TINY, "vision_cfg": {**TINY["vision_cfg"], "pool_type": "avg"}}
    with pytest.raises(ValueError, match="differs from open_clip's encode_image"):
        clip_base(write_config(folder, "pooled", pooled), weights, NAMES)


@pytest.mark.parametrize(
    ("name", "timm_model"),
    [
        ("ViT-B-32", "vit_base_patch32_clip_224"),
        ("ViT-B-16-quickgelu", "vit_base_patch16_clip_quickgelu_224"),
        ("ViT-L-14-336", "vit_large_patch14_clip_336"),
        ("ViT-bigG-14", "vit_gigantic_patch14_clip_224"),
    ],
)
def test_builtin_configs_map_to_timm_clip_towers(name, timm_model):
    architecture = clip_architecture(open_clip.get_model_config(name))
    assert architecture["timm_model"] == timm_model


def test_full_size_vit_b_32_tower_converts_exactly():
    """A random ViT-B/32 CLIP: timm's converted tower gives encode_image (image_tower checks it). The text
    tower is not used here, so it is the tiny one (faster)."""
    config = {**open_clip.get_model_config("ViT-B-32"), "text_cfg": TINY["text_cfg"]}
    torch.manual_seed(0)
    clip = open_clip.CLIP(**config).eval()
    tower = image_tower(config, clip)
    assert tower.head.weight.shape == (512, 768) and len(tower.blocks) == 12
    assert torch.equal(tower.head.weight, clip.visual.proj.T)


def test_import_command_builds_the_head_from_the_data_class_names(tiny, tmp_path):
    from typer.testing import CliRunner

    from explainvec.cli.main import app

    out = tmp_path / "clip-base.safetensors"
    args = [
        "import",
        f"clip:{tiny['config']}",
        "--weights",
        tiny["weights"]["pt"],
        "--classes",
        "synthetic:geo",
    ]
    result = CliRunner().invoke(app, [*map(str, args), "--out", str(out)])
    assert result.exit_code == 0, result.output
    checkpoint = load_checkpoint(out)
    assert checkpoint.meta.class_names == list(GEO)
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(
            checkpoint.model(x), open_clip_logits(tiny["clip"], x, list(GEO)), atol=1e-4, rtol=1e-4
        )
    fresh = str(out.with_name("no-classes.safetensors"))
    missing = CliRunner().invoke(app, ["import", f"clip:{tiny['config']}", "--out", fresh])
    assert missing.exit_code == 2 and "--classes" in missing.output
