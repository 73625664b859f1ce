"""The transfer layer: the reversible in-place edit, apply_vector, and files written before typed metadata."""

import copy
from pathlib import Path

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

import explainvec.vectors.explainability_vector as vector_module
from explainvec import apply_vector, lambda_curve
from explainvec.models.adapter import ADAPTER, has_adapter
from explainvec.models.checkpoint import Checkpoint, load_checkpoint
from explainvec.models.self_explaining import readout_of
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

    add_adapter(with_adapter)
    with torch.no_grad():
        getattr(with_adapter, ADAPTER).weight.add_(0.1)
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
