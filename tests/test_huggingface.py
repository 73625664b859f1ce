"""Hugging Face models: random tiny ``transformers`` ViT and CLIP models saved with ``save_pretrained``,
imported as timm ViTs, checked against the ``transformers`` forward, then trained, edited and explained
through the command line."""

from __future__ import annotations

import open_clip
import pytest
import torch
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    ResNetConfig,
    ResNetForImageClassification,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
)
from typer.testing import CliRunner

from explainvec.cli.main import app
from explainvec.data.domains import GEO
from explainvec.evaluation.explain_files import read_explained
from explainvec.models.checkpoint import load_checkpoint, save_checkpoint
from explainvec.models.huggingface import hf_base, hf_preprocess
from explainvec.models.masking import masked_logits
from explainvec.models.vit import embed

TOLERANCE = 1e-4
GEO_NAMES = list(GEO)
VIT = {
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
CLIP = {
    "text_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
    },
    "vision_config": {**VIT, "hidden_size": 64, "intermediate_size": 128},
    "projection_dim": 16,
}


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def images(n=6, seed=1):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """``save_pretrained`` folders of a random tiny ViT classifier (geo's five classes) and a tiny CLIP,
    each with its image processor's config, and the ``transformers`` models themselves."""
    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    labels = dict(enumerate(GEO_NAMES))
    vit = ViTForImageClassification(
        ViTConfig(**VIT, id2label=labels, label2id={n: i for i, n in labels.items()})
    ).eval()
    vit.save_pretrained(root / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "vit")
    clip = CLIPModel(CLIPConfig(**CLIP)).eval()
    clip.save_pretrained(root / "clip")
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(root / "clip")
    return {"vit": vit, "clip": clip, "vit_folder": root / "vit", "clip_folder": root / "clip"}


def test_vit_logits_match_transformers_and_survive_a_round_trip(folders, tmp_path):
    base = hf_base(f"hf:{folders['vit_folder']}")
    with torch.no_grad():
        reference = folders["vit"](pixel_values=images()).logits
        difference = (base.model(images()) - reference).abs().max().item()
        print(f"ViTForImageClassification: max |timm − transformers| logit = {difference:.2e}")
        assert difference <= TOLERANCE
        assert base.meta.class_names == GEO_NAMES
        reloaded = load_checkpoint(save_checkpoint(tmp_path / "base.safetensors", base))
        assert torch.equal(reloaded.model(images()), base.model(images()))
    assert base.meta.preprocess.interpolation == "bilinear" and base.meta.preprocess.mean == (0.5, 0.5, 0.5)
    assert base.meta.architecture["norm_eps"] == 1e-12


def test_clip_zero_shot_logits_match_transformers(folders):
    base = hf_base(f"hf:{folders['clip_folder']}", ["cat", "dog", "car"])
    clip, x = folders["clip"], images()
    tokens = open_clip.SimpleTokenizer()([f"a photo of a {n}." for n in ("cat", "dog", "car")])
    with torch.no_grad():
        reference = clip(input_ids=tokens, attention_mask=tokens != 0, pixel_values=x).logits_per_image
        image = clip.get_image_features(pixel_values=x)
        image = image if isinstance(image, torch.Tensor) else image.pooler_output
        ours = base.model(x) / image.norm(dim=-1, keepdim=True)  # explainvec leaves the image unnormalised
        difference = (ours - reference).abs().max().item()
    print(f"CLIPModel: max |timm − transformers| zero-shot logit = {difference:.2e}")
    assert difference <= TOLERANCE
    assert base.meta.training.zero_shot_head["template"] == "a photo of a {}."
    assert base.meta.preprocess.mean == tuple(open_clip.OPENAI_DATASET_MEAN)


def test_attention_masking_on_an_imported_vit_equals_dropping_patches(folders):
    model = hf_base(f"hf:{folders['vit_folder']}").model
    keep = torch.zeros(1, 16, dtype=torch.bool)
    keep[0, [0, 5, 10]] = True
    with torch.no_grad():
        tokens = embed(model, images(1))
        dropped = model.forward_head(model.norm(model.blocks(tokens[:, [0, 1, 6, 11]])))
        assert torch.allclose(masked_logits(model, images(1), keep), dropped, atol=1e-5)


def test_preprocessing_comes_from_the_processor_config():
    config = {
        "size": {"shortest_edge": 40},
        "crop_size": {"height": 32},
        "do_center_crop": True,
        "resample": 3,
    }
    preprocess = hf_preprocess("vit", 32, {**config, "image_mean": [0.1, 0.2, 0.3], "image_std": [1, 1, 1]})
    assert preprocess.crop_pct == pytest.approx(0.8) and preprocess.interpolation == "bicubic"
    assert preprocess.mean == (0.1, 0.2, 0.3)
    assert hf_preprocess("clip", 32).std == tuple(open_clip.OPENAI_DATASET_STD)
    with pytest.raises(ValueError, match="48 px images, the model takes 32 px"):
        hf_preprocess("vit", 32, {"size": {"height": 48, "width": 48}})


def test_a_transformers_model_that_is_not_a_vit_is_refused(tmp_path):
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8], depths=[1], num_labels=2)
    ResNetForImageClassification(config).save_pretrained(tmp_path / "resnet")
    result = invoke("import", f"hf:{tmp_path / 'resnet'}", "--out", tmp_path / "r.safetensors")
    assert result.exit_code == 2
    assert "holds a ResNetForImageClassification" in result.output and "CLIPModel" in result.output
    assert len(result.output.strip().splitlines()) == 1
    missing = invoke("import", f"hf:{tmp_path / 'nothing'}", "--out", tmp_path / "r.safetensors")
    assert missing.exit_code == 2 and "no config.json" in missing.output


def test_train_vector_apply_explain_through_the_cli_on_an_imported_vit(folders, tmp_path):
    base, predict, sem = (tmp_path / f"{n}.safetensors" for n in ("base", "predict", "sem"))
    tau, edited, out = tmp_path / "tau.safetensors", tmp_path / "edited.safetensors", tmp_path / "explained"
    small = ("--data", "synthetic:geo", "--epochs", 1, "--train-size", 32, "--batch-size", 16)
    steps = [
        ("import", f"hf:{folders['vit_folder']}", "--out", base),
        ("train", "--base", base, "--out", predict, *small),
        ("train", "--base", base, "--out", sem, "--mode", "explain", "--value-model", predict, *small),
        ("vector", "--explain", sem, "--predict", predict, "--out", tau),
        ("apply", "--model", predict, "--vector", tau, "--lam", 1, "--out", edited),
        ("explain", "--model", edited, "--data", "synthetic:geo", "--count", 2, "--out", out),
    ]
    for step in steps:
        result = invoke(*step)
        assert result.exit_code == 0, f"{step[0]}: {result.output}"
    meta = load_checkpoint(edited).meta
    assert meta.kind == "edited" and meta.base_fingerprint == load_checkpoint(base).meta.base_fingerprint
    explained = read_explained(out)
    assert explained.class_names == GEO_NAMES and explained.attributions.shape == (2, 16, 5)


def test_a_clip_folder_imports_through_the_cli_with_the_data_class_names(folders, tmp_path):
    out = tmp_path / "clip.safetensors"
    result = invoke("import", f"hf:{folders['clip_folder']}", "--classes", "synthetic:geo", "--out", out)
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out).meta.class_names == GEO_NAMES
    result = invoke("import", f"hf:{folders['clip_folder']}", "--out", tmp_path / "no-classes.safetensors")
    assert result.exit_code == 2 and "--classes" in result.output
