"""The evaluation suite on a tiny random ViT: every baseline runs, and the metrics rank them sensibly."""

import copy

import pytest
import torch

from explainvec.evaluation.baselines import ATTRIBUTORS, get_attributor, random_vector_like
from explainvec.evaluation.suite import (
    Batch,
    Method,
    SuiteConfig,
    budget_curve,
    equivalent_budget,
    evaluate_methods,
)
from explainvec.models.self_explaining import SelfExplainingViT
from explainvec.models.vit import build_vit, embed
from explainvec.vectors import ExplainabilityVector
from explainvec.vectors.explainability_vector import VectorMeta


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    vit = build_vit(
        {"img_size": 24, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2, "num_classes": 3}
    ).eval()
    return SelfExplainingViT(vit, ["a", "b", "c"], "logit").eval()


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(1)
    masks = (torch.rand(8, 9, generator=generator) > 0.6).float()
    return Batch(
        torch.randn(8, 3, 24, 24, generator=generator), torch.randint(3, (8,), generator=generator), masks
    )


def test_every_baseline_gives_a_map_per_patch_and_class(model, batch):
    with torch.no_grad():
        out = model(batch.images)
    for name in [*ATTRIBUTORS, "kernelshap32"]:
        maps = get_attributor(name)(model, batch.images, out)
        assert maps.shape == (8, 9, 3) and maps.isfinite().all(), name
    with pytest.raises(ValueError, match="unknown baseline"):
        get_attributor("saliency-of-my-dreams")


def test_integrated_gradients_are_complete(model, batch):
    """Per class, the patch scores add up to the logit's change from the all-zero image."""
    images = batch.images[:4]
    with torch.no_grad():
        out = model(images)
        change = model.vit(images) - model.vit(torch.zeros_like(images))
    maps = get_attributor("integrated_gradients")(model, images, out)
    torch.testing.assert_close(maps.sum(1), change, atol=1e-4, rtol=0)  # measured error 5e-6 (16 steps)


@torch.no_grad()
def test_rollout_of_one_block_is_half_the_class_token_attention():
    """With one block, rollout is the class token's row of ½(A + I): half its head-averaged attention."""
    torch.manual_seed(2)
    vit = build_vit(
        {"img_size": 24, "patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2, "num_classes": 3}
    ).eval()
    one_block = SelfExplainingViT(vit, ["a", "b", "c"], "logit")
    images = torch.randn(2, 3, 24, 24)
    block = vit.blocks[0]
    x = block.norm1(embed(vit, images))
    q, k, _ = (x @ block.attn.qkv.weight.T + block.attn.qkv.bias).reshape(2, 10, 3, 2, 16).unbind(2)
    attention = torch.einsum("bihd,bjhd->bhij", q, k).div(16**0.5).softmax(-1).mean(1)
    maps = get_attributor("rollout")(one_block, images, one_block(images))
    expected = 0.5 * attention[:, 0, 1:]
    torch.testing.assert_close(maps, expected[:, :, None].expand(2, 9, 3), atol=1e-6, rtol=0)


@torch.no_grad()
def test_direct_attribution_adds_up_to_the_logits_of_a_model_without_mlps():
    """Without MLPs, the class token's final residual is its embedding plus what every token sends it
    through attention in each block; the final norm is linear once its scale is fixed, so the patches'
    maps plus the class token's own share, the norm's shift and the head's bias give the logits exactly."""
    from explainvec.models.contributions import block_contributions, captured_attention

    torch.manual_seed(3)
    vit = build_vit(
        {"img_size": 24, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2, "num_classes": 3}
    ).eval()
    for block in vit.blocks:
        torch.nn.init.zeros_(block.mlp.fc2.weight)
        torch.nn.init.zeros_(block.mlp.fc2.bias)
    model = SelfExplainingViT(vit, ["a", "b", "c"], "logit")
    images = torch.randn(2, 3, 24, 24)
    with captured_attention(vit) as captured:
        vit.forward_features(images)
    contributions, residual = block_contributions(vit, captured).sum(2), captured["residual"][:, 0]
    own = embed(vit, images)[:, 0] + sum(block.attn.proj.bias for block in vit.blocks)
    torch.testing.assert_close(residual, own + contributions.sum(1), atol=1e-5, rtol=0)
    maps = get_attributor("direct_attribution")(model, images, model(images))
    assert maps.shape == (2, 9, 3)
    sigma = (residual.var(-1, unbiased=False)[:, None] + vit.norm.eps).sqrt()
    rest = own + contributions[:, 0]
    rest = (rest - rest.mean(-1, keepdim=True)) / sigma * vit.norm.weight + vit.norm.bias
    torch.testing.assert_close(maps.sum(1) + vit.head(rest), vit(images), atol=1e-4, rtol=0)


def test_suite_ranks_kernel_shap_above_random(model, batch):
    config = SuiteConfig(reference_budget=256, resamples=100, budgets=[8, 32])
    methods = [Method(n, model, get_attributor(n), 1) for n in ("kernelshap150", "random", "rollout")]
    shifted = copy.deepcopy(model.vit)  # the unedited model, here a copy that predicts class 0 more often
    with torch.no_grad():
        shifted.head.bias[0] += 1.0
        agreeing = (model.vit(batch.images).argmax(-1) == shifted(batch.images).argmax(-1)).float().mean()
    assert 0 < agreeing < 1
    results, reference = evaluate_methods(
        methods, Batch(batch.images, batch.labels, batch.masks, shifted), config
    )
    by_name = {r.method: r.metrics for r in results}
    assert by_name["kernelshap150"]["pearson"]["mean"] > 0.9 > by_name["random"]["pearson"]["mean"]
    assert (
        by_name["kernelshap150"]["insertion_minus_deletion"]["mean"]
        > by_name["random"]["insertion_minus_deletion"]["mean"]
    )
    for metrics in by_name.values():
        assert {"mask_mass", "pixel_insertion_auc", "sensitivity_n", "spearman", "agreement"} <= set(metrics)
        assert metrics["agreement"]["mean"] == pytest.approx(agreeing.item())
        for summary in metrics.values():
            assert summary["low"] <= summary["mean"] <= summary["high"]
    assert reference["reference_mean_std_error"]["random"] > 0
    curve = budget_curve(model, batch, config)
    assert curve[-1]["pearson"] > curve[0]["pearson"]


def test_equivalent_budget_interpolates_in_log_budget():
    curve = [{"budget": 16, "pearson": 0.5}, {"budget": 64, "pearson": 0.9}, {"budget": 256, "pearson": 0.95}]
    assert equivalent_budget(curve, "pearson", 0.7) == pytest.approx(32.0)
    assert equivalent_budget(curve, "pearson", 0.2) == 16.0
    assert equivalent_budget(curve, "pearson", 0.99) is None


def test_random_vector_matches_tau_norm_per_block(model):
    tensors = {
        name: torch.randn_like(p) * (i + 1)
        for i, (name, p) in enumerate(model.vit.named_parameters())
        if not name.startswith("head")
    }
    tau = ExplainabilityVector(tensors, VectorMeta(base_fingerprint="x", architecture={}))
    control = random_vector_like(tau, seed=3)
    for block, norm in tau.block_norms().items():
        assert control.block_norms()[block] == pytest.approx(norm, rel=1e-5)
    assert abs(control.dot(tau)) < 0.2 * tau.norm() ** 2


def test_suite_report_predicts_each_model_once_and_bootstraps_per_image_hits(tmp_path, monkeypatch):
    from explainvec.data.preprocess import Preprocess
    from explainvec.evaluation import measure
    from explainvec.evaluation import metrics as m
    from explainvec.evaluation.evaluate import evaluate_checkpoint, suite_report
    from explainvec.models.checkpoint import Checkpoint, CheckpointMeta
    from explainvec.models.prediction import predict_logits

    architecture = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2}

    def checkpoint(seed):
        torch.manual_seed(seed)
        vit = build_vit({**architecture, "num_classes": 5}).eval()
        meta = CheckpointMeta(
            kind="predict",
            architecture={**architecture, "num_classes": 5},
            class_names=["circle", "square", "triangle", "cross", "ring"],
            preprocess=Preprocess(image_size=32),
            base_fingerprint="x",
        )
        return Checkpoint(vit, meta)

    edited, unedited = checkpoint(0), checkpoint(1)
    predicted = []

    def counting(model, data, **kwargs):
        predicted.append(id(model))
        return predict_logits(model, data, **kwargs)

    monkeypatch.setattr(measure, "predict_logits", counting)
    config = SuiteConfig(reference_budget=64, resamples=50, budgets=[8, 16])
    report = suite_report(
        edited,
        "synthetic:geo",
        tmp_path,
        reference=unedited,
        baselines=("kernelshap16", "random"),
        images=4,
        size=40,
        config=config,
    )
    assert sorted(predicted) == sorted([id(edited.model), id(unedited.model)])  # each model once
    rows = {row.method: row for row in report.rows}
    assert list(rows) == ["model", "lambda0", "kernelshap16", "random"]
    logits, labels = predict_logits(edited.model, edited.load_split("synthetic:geo", "test", size=40))
    reference_logits, _ = predict_logits(
        unedited.model, unedited.load_split("synthetic:geo", "test", size=40)
    )
    assert (
        rows["model"].metrics["accuracy"] == m.summarise(m.accuracy(logits, labels), resamples=50).as_dict()
    )
    agreeing = (logits.argmax(-1) == reference_logits.argmax(-1)).float().mean().item()
    assert agreeing < 1.0 and rows["model"].agreement == pytest.approx(agreeing)
    assert rows["lambda0"].agreement == 1.0 and rows["random"].accuracy == rows["lambda0"].accuracy
    assert rows["model"].accuracy == pytest.approx(
        evaluate_checkpoint(edited, "synthetic:geo", size=40).accuracy
    )
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "<table>" in page  # budget curve, examples
