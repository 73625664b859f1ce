import json

import pytest
import torch

from explainvec.models.checkpoint import Checkpoint
from explainvec.vectors import ExplainabilityVector, backbone_parameters, block_of


def test_vector_is_the_backbone_difference(pair):
    explain, predict = pair
    tau = ExplainabilityVector.from_checkpoints(explain, predict)
    assert not any(n.startswith("head.") for n in tau.tensors)
    name = "blocks.2.mlp.fc1.weight"
    torch.testing.assert_close(
        tau.tensors[name], explain.model.state_dict()[name] - predict.model.state_dict()[name]
    )
    edited = tau.apply_to(predict.model, 1.0)
    for n, p in backbone_parameters(edited).items():
        torch.testing.assert_close(p, backbone_parameters(explain.model)[n], atol=1e-6, rtol=0)
    assert torch.equal(edited.head.weight, predict.model.head.weight)


def test_algebra(pair):
    tau = ExplainabilityVector.from_checkpoints(*pair)
    other = tau * 0.5
    back = (tau + other) - other
    for n in tau.tensors:
        torch.testing.assert_close(back.tensors[n], tau.tensors[n])
    assert sum([tau, tau, tau]).norm() == pytest.approx(3 * tau.norm(), rel=1e-6)
    assert tau.dot(tau) == pytest.approx(tau.norm() ** 2, rel=1e-9)
    assert (-tau).dot(tau) == pytest.approx(-(tau.norm() ** 2), rel=1e-9)
    assert sum(v**2 for v in tau.block_norms().values()) == pytest.approx(tau.norm() ** 2, rel=1e-6)


def test_apply_zero_is_identity_and_lambdas_add(pair):
    tau = ExplainabilityVector.from_checkpoints(*pair)
    model = pair[1].model
    same = tau.apply_to(model, 0.0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(same.state_dict().values(), model.state_dict().values(), strict=True)
    )
    twice = tau.apply_to(tau.apply_to(model, 0.3), 0.5)
    once = tau.apply_to(model, 0.8)
    for a, b in zip(twice.parameters(), once.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_per_block_lambda_only_moves_those_blocks(pair):
    tau = ExplainabilityVector.from_checkpoints(*pair)
    model = pair[1].model
    edited = tau.apply_to(model, {"blocks.3": 1.0})
    before, after = backbone_parameters(model), backbone_parameters(edited)
    for n in before:
        assert torch.equal(before[n], after[n]) != n.startswith("blocks.3")


def test_block_of_groups_parameters_by_block_or_first_name():
    assert block_of("blocks.11.attn.qkv.weight") == "blocks.11"
    assert block_of("patch_embed.proj.weight") == "patch_embed" and block_of("pos_embed") == "pos_embed"


@pytest.mark.parametrize(
    ("lam", "unknown"),
    [({"blocks.3": 1.0, "block.3": 1.0}, "block.3"), ({"head": 1.0, "cls": 1.0}, "cls, head")],
)
def test_per_block_lambda_for_a_block_tau_does_not_hold_is_refused(pair, lam, unknown):
    tau = ExplainabilityVector.from_checkpoints(*pair)
    model = pair[1].model
    before = {n: p.clone() for n, p in model.state_dict().items()}
    holds = "blocks.0, blocks.1, blocks.2, blocks.3, cls_token, norm, patch_embed, pos_embed"
    with pytest.raises(ValueError, match=f"^per-block λ for {unknown}: the vector holds only {holds}$"):
        tau.apply_to(model, lam)
    with tau.edit(model) as edit, pytest.raises(ValueError, match=f"per-block λ for {unknown}"):
        edit.set(lam)
    assert all(torch.equal(p, before[n]) for n, p in model.state_dict().items())


def test_save_load_and_refusals(pair, tmp_path):
    tau = ExplainabilityVector.from_checkpoints(*pair)
    loaded = ExplainabilityVector.load(tau.save(tmp_path / "tau.safetensors"))
    assert all(torch.equal(loaded.tensors[n], t) for n, t in tau.tensors.items())
    target = pair[1]
    other_base = Checkpoint(target.model, target.meta.model_copy(update={"base_fingerprint": "0" * 16}))
    with pytest.raises(ValueError, match="--force"):
        loaded.check_compatible(other_base)
    loaded.check_compatible(other_base, force=True)
    other_arch = Checkpoint(
        target.model,
        target.meta.model_copy(update={"architecture": {**target.meta.architecture, "depth": 2}}),
    )
    with pytest.raises(ValueError, match="depth"):
        loaded.check_compatible(other_arch, force=True)


def test_choose_lambda_respects_agreement():
    from explainvec.transfer import LambdaPoint, choose_lambda

    # scores 0.1, 0.6, 0.3, 0.8: the best allowed point lies between λ = 0 and the largest allowed λ
    curve = [
        LambdaPoint(0.0, 1.0, 0.1),
        LambdaPoint(0.5, 0.995, 0.6),
        LambdaPoint(1.0, 0.99, 0.3),
        LambdaPoint(2.0, 0.9, 0.8),
    ]
    assert choose_lambda(curve).lam == 0.5
    assert choose_lambda(curve, min_agreement=0.999).lam == 0.0
    assert choose_lambda(curve, min_agreement=0.5).lam == 2.0
    # no λ keeps the predictions: the one closest to 0, however it scores
    unsafe = [LambdaPoint(-0.5, 0.8, 0.9), LambdaPoint(0.25, 0.9, 0.1), LambdaPoint(1.0, 0.7, 1.0)]
    assert choose_lambda(unsafe).lam == 0.25


@pytest.mark.parametrize("removed", [True, "attention"])  # True: the linear adapter's old field
def test_files_with_a_removed_adapter_kind_are_refused_in_one_line(pair, tmp_path, removed):
    from explainvec.models.checkpoint import load_checkpoint, save_checkpoint

    tau = ExplainabilityVector.from_checkpoints(*pair)
    explanation = tau.meta.explanation.model_copy(update={"adapter": removed})
    tau.meta = tau.meta.model_copy(update={"explanation": explanation})
    tau.save(tmp_path / "tau.safetensors")
    with pytest.raises(ValueError, match=r"adapter was removed .* explainvec vector"):
        ExplainabilityVector.load(tmp_path / "tau.safetensors")
    path = save_checkpoint(tmp_path / "model.safetensors", pair[1])
    sidecar = json.loads(path.with_suffix(".json").read_text())  # as a file written before the removal
    sidecar["architecture"]["explain_adapter"] = removed
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(ValueError, match="adapter was removed"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("kind", "weights"),
    [
        ("contributions", "mix.weight"),
        ("stream", "terms.weight"),
        ("two-hop", "hops.weight"),
        ("two-hop-mlp", "out.weight"),
    ],
)
def test_direct_attribution_adapters_start_as_it_and_travel_in_tau(pair, tmp_path, kind, weights):
    from explainvec.evaluation.baselines import get_attributor
    from explainvec.models.adapter import adapter_kind, add_adapter
    from explainvec.models.checkpoint import load_checkpoint, save_checkpoint
    from explainvec.models.self_explaining import SelfExplainingViT

    explain, predict = pair
    names, images = predict.meta.class_names, torch.randn(3, 3, 32, 32)
    add_adapter(explain.model, kind)
    start = SelfExplainingViT(explain.model, names, "logit")
    out = start(images)
    direct = get_attributor("direct_attribution")(start, images, out)

    def centred(maps):
        return maps - maps.mean(1, keepdim=True)

    # at start the map is the training-free direct attribution (up to the efficiency shift)
    torch.testing.assert_close(centred(out.attributions), centred(direct), atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        trained = explain.model.explain_adapter.get_parameter(weights)
        trained.add_(0.05 * torch.randn_like(trained))
    tau = ExplainabilityVector.from_checkpoints(explain, predict)
    adapter_only = ExplainabilityVector({k: v for k, v in tau.tensors.items() if "adapter" in k}, tau.meta)
    edited = adapter_only.apply_to(predict.model, 1.0).eval()
    assert adapter_kind(edited) == kind
    torch.testing.assert_close(edited.explain_adapter.get_parameter(weights), trained)
    assert torch.equal(edited(images), predict.model(images))  # predictions never change
    after = SelfExplainingViT(edited, names, "logit")(images).attributions
    plain = get_attributor("direct_attribution")(
        SelfExplainingViT(predict.model, names, "logit"), images, out
    )
    assert not torch.allclose(centred(after), centred(plain), atol=1e-3)
    path = save_checkpoint(tmp_path / "edited.safetensors", Checkpoint(edited, predict.meta))
    reloaded = load_checkpoint(path)
    assert reloaded.meta.architecture["explain_adapter"] == kind
    torch.testing.assert_close(SelfExplainingViT(reloaded.model, names, "logit")(images).attributions, after)
    adapter_only.check_compatible(predict)  # a model without adapter accepts an adapter-carrying vector
    explanation = adapter_only.meta.explanation.model_copy(update={"adapter": kind, "backbone": False})
    adapter_only.meta = adapter_only.meta.model_copy(update={"explanation": explanation})
    adapter_only.save(tmp_path / "tau.safetensors")
    assert (
        ExplainabilityVector.load(tmp_path / "tau.safetensors").tensors.keys() == adapter_only.tensors.keys()
    )
