"""The transfer layer: the reversible in-place edit, apply_vector, and files written before typed metadata."""

import copy
from pathlib import Path

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

import explainvec.vectors.explainability_vector as vector_module
from explainvec import apply_vector, lambda_curve
from explainvec.evaluation.metrics import insertion_deletion_auc
from explainvec.models.adapter import ADAPTER, has_adapter
from explainvec.models.checkpoint import Checkpoint, load_checkpoint
from explainvec.models.self_explaining import Explanation, SelfExplainingViT, readout_of
from explainvec.shapley.kernel_shap import kernel_shap
from explainvec.shapley.model_games import MaskedModelGame
from explainvec.transfer.lambda_search import ShapleyFit
from explainvec.vectors import ExplainabilityVector

OLD = Path(__file__).parent / "data" / "format-1"
"""Files written by explainvec at commit ece2797 (untyped metadata), kept to show they still load."""


def state(model):
    return {n: t.clone() for n, t in model.state_dict().items()}


def test_edit_sets_each_lambda_like_apply_to_and_restores_bit_for_bit(pair):
    tau = ExplainabilityVector.from_checkpoints(*pair)
    model, before = pair[1].model, state(pair[1].model)
    with tau.edit(model) as edit:
        for lam in (0.5, 2.0, {"blocks.1": 1.0}, 0.0):
            edit.set(lam)
            expected = tau.apply_to(_copy_of(before, model), lam)
            assert all(torch.equal(t, expected.state_dict()[n]) for n, t in model.state_dict().items())
        edit.set(1.5)
    assert all(torch.equal(t, before[n]) for n, t in model.state_dict().items())


def _copy_of(values, model):
    fresh = copy.deepcopy(model)
    fresh.load_state_dict(values)
    return fresh


def test_edit_adds_and_removes_the_adapter_a_vector_carries(pair, tiny_vit):
    explain, predict = pair
    with_adapter = copy.deepcopy(explain.model)
    from explainvec.models.adapter import add_adapter

    add_adapter(with_adapter, "stream")
    with torch.no_grad():
        getattr(with_adapter, ADAPTER).terms.weight.add_(0.1)
    tau = ExplainabilityVector.from_checkpoints(Checkpoint(with_adapter, explain.meta), predict)
    with tau.edit(predict.model) as edit:
        edit.set(1.0)
        assert has_adapter(predict.model)
    assert not has_adapter(predict.model)


def test_lambda_search_copies_no_model_and_leaves_the_target_as_it_was(pair, monkeypatch):
    tau = ExplainabilityVector.from_checkpoints(*pair)
    target, before = pair[1], state(pair[1].model)
    copies = []
    real = copy.deepcopy

    def counting(x, *args):
        if isinstance(x, VisionTransformer):
            copies.append(1)
        return real(x, *args)

    monkeypatch.setattr(vector_module.copy, "deepcopy", counting)
    images = torch.randn(6, 3, 32, 32)
    edited = apply_vector(target, tau, "auto", data=images, grid=(0.0, 0.5, 1.0, 2.0))
    assert len(copies) == 1  # the returned model only, none per λ
    assert all(torch.equal(t, before[n]) for n, t in target.model.state_dict().items())
    explanation = edited.meta.explanation
    assert edited.meta.kind == "edited" and explanation.lam in [p["lam"] for p in explanation.lambda_curve]
    assert len(explanation.lambda_curve) == 4
    # the curve measured in place equals one measured on copies made by apply_to
    curve = lambda_curve(copy.deepcopy(target.model), tau, images, grid=(0.0, 0.5, 1.0, 2.0))
    assert [p.as_dict() for p in curve] == explanation.lambda_curve
    chosen = tau.apply_to(target.model, explanation.lam)
    assert all(torch.equal(t, chosen.state_dict()[n]) for n, t in edited.model.state_dict().items())


def test_apply_vector_with_a_fixed_lambda_records_it_and_needs_data_for_auto(pair):
    tau = ExplainabilityVector.from_checkpoints(*pair)
    edited = apply_vector(pair[1], tau, 0.25)
    assert edited.meta.explanation.lam == 0.25 and edited.meta.explanation.lambda_curve is None
    with pytest.raises(ValueError, match="needs data"):
        apply_vector(pair[1], tau, "auto")


def test_files_written_before_typed_metadata_still_load_and_apply():
    predict = load_checkpoint(OLD / "predict.safetensors")
    edited = load_checkpoint(OLD / "edited.safetensors")
    tau = ExplainabilityVector.load(OLD / "tau.safetensors")
    assert predict.meta.training.data == "synthetic:geo" and predict.meta.kind == "predict"
    assert readout_of(predict) == "logit" and readout_of(edited) == "logit"
    assert edited.meta.explanation.lam in [p["lam"] for p in edited.meta.explanation.lambda_curve]
    again = apply_vector(predict, tau, edited.meta.explanation.lam)
    assert all(torch.equal(t, edited.model.state_dict()[n]) for n, t in again.model.state_dict().items())


def _explanation_of(maps: torch.Tensor, logits: torch.Tensor) -> Explanation:
    return Explanation(logits, maps, (4, 4), 32, [str(c) for c in range(logits.shape[-1])])


def test_shapley_fit_is_best_at_the_targets_shapley_values_between_smaller_and_larger_steps(tiny_vit):
    """Along the path from the head's map (t = 0) through the target's Shapley values (t = 1) and beyond,
    the fit to the target's own masked outputs peaks at t = 1: a curve whose best point is in the middle."""
    torch.manual_seed(1)
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        logits = tiny_vit(images)
    classes = logits.argmax(-1)
    fit = ShapleyFit(tiny_vit, images, classes, readout="logit", coalitions=256)
    game = MaskedModelGame(tiny_vit, images, "logit")
    shapley = kernel_shap(game, 2048, generator=torch.Generator().manual_seed(0)).values
    start = SelfExplainingViT(tiny_vit, [str(c) for c in range(5)], "logit")(images).attributions
    steps = (0.0, 0.5, 1.0, 1.5, 2.0)
    scores = [fit(tiny_vit, _explanation_of(start + t * (shapley - start), logits))[0] for t in steps]
    assert max(range(len(steps)), key=scores.__getitem__) == 2, scores
    assert scores[0] < scores[1] < scores[2] > scores[3] > scores[4]


def test_shapley_fit_evaluates_its_bank_once_whatever_the_number_of_lambdas(pair, monkeypatch):
    tau = ExplainabilityVector.from_checkpoints(*pair)
    images = torch.randn(3, 3, 32, 32)
    evaluated = []
    real = MaskedModelGame.__call__

    def counting(self, masks):
        evaluated.append(masks.shape[1])
        return real(self, masks)

    monkeypatch.setattr(MaskedModelGame, "__call__", counting)
    for grid in ((0.0, 1.0), (0.0, 0.25, 0.5, 0.75, 1.0, 2.0)):
        evaluated.clear()
        lambda_curve(pair[1].model, tau, images, grid=grid, criterion="shapley_fit", coalitions=8)
        assert evaluated == [8]  # one call: the bank of 8 coalitions per image, on the unedited model
    evaluated.clear()
    lambda_curve(pair[1].model, tau, images, grid=(0.0, 1.0), criterion="insertion_deletion")
    assert evaluated == [2 * 17, 2 * 17]  # insertion and deletion curves at every λ


def test_insertion_deletion_stays_reachable_and_scores_as_before(pair):
    tau = ExplainabilityVector.from_checkpoints(*pair)
    target, images = pair[1], torch.randn(5, 3, 32, 32)
    edited = apply_vector(target, tau, "auto", data=images, grid=(0.0, 1.0), criterion="insertion_deletion")
    assert edited.meta.explanation.lambda_criterion == "insertion_deletion"
    for point in edited.meta.explanation.lambda_curve:
        model = tau.apply_to(target.model, point["lam"]).eval()
        out = SelfExplainingViT(model, target.meta.class_names, readout_of(target))(images)
        game = MaskedModelGame(model, images)
        insertion, deletion = insertion_deletion_auc(game, out.for_class(), out.predicted)
        assert point["insertion"] == pytest.approx(insertion.mean().item(), abs=1e-6)
        assert point["score"] == pytest.approx((insertion - deletion).mean().item(), abs=1e-6)
    default = apply_vector(target, tau, "auto", data=images, grid=(0.0, 1.0))
    assert default.meta.explanation.lambda_criterion == "shapley_fit"
    assert {"score", "fit_mse"} <= default.meta.explanation.lambda_curve[0].keys()
    with pytest.raises(ValueError, match="unknown λ criterion"):
        apply_vector(target, tau, "auto", data=images, criterion="accuracy")


def test_apply_says_plainly_when_lam_auto_keeps_zero(pair, tmp_path):
    from typer.testing import CliRunner

    from explainvec.cli.main import app
    from explainvec.models.checkpoint import save_checkpoint

    explain, predict = pair
    target = save_checkpoint(tmp_path / "target.safetensors", predict)
    # a vector so large that every λ > 0 changes most predictions: the rule must keep λ = 0
    (ExplainabilityVector.from_checkpoints(explain, predict) * 1e3).save(tmp_path / "tau.safetensors")
    args = ["apply", "--model", target, "--vector", tmp_path / "tau.safetensors", "--lam", "auto",
            "--data", "synthetic:geo", "--images", 16, "--out", tmp_path / "edited.safetensors"]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(tmp_path / "edited.safetensors").meta.explanation.lam == 0
    assert "kept λ = 0" in " ".join(result.output.split())
