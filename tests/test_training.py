"""Training: the batches of an epoch, label supervision's checks (tiny models), and real runs from the
session's pretrained base."""

import copy
import functools

import pytest
import torch

from explainvec.evaluation.evaluate import evaluate_checkpoint
from explainvec.io import write_tensors
from explainvec.models.checkpoint import Checkpoint
from explainvec.models.fingerprint import fingerprint
from explainvec.models.vit import build_vit
from explainvec.shapley.label_cache import MERGED, LabelCache
from explainvec.training.config import TrainConfig
from explainvec.training.explain import train_explainer
from explainvec.training.finetune import finetune
from explainvec.training.loop import epoch_batches
from tiny import TINY, make_checkpoint

GEO = ["circle", "square", "triangle", "cross", "ring"]


@pytest.mark.parametrize("size", [49, 48, 60, 7])
def test_epoch_batches_are_the_same_for_any_number_of_processes(size):
    one = epoch_batches(size, 16, 0, 1, world_size=1)
    assert sorted(torch.cat(one).tolist()) == list(range(size))  # every item, once
    assert [len(b) for b in one] == {49: [16, 16, 17], 48: [16, 16, 16], 60: [16, 16, 28], 7: [7]}[size]
    for world in (2, 3):
        assert all(torch.equal(a, b) for a, b in zip(one, epoch_batches(size, 16, 0, 1, world), strict=True))
    with pytest.raises(ValueError, match="a batch of 7 items cannot be shared by 8 processes"):
        epoch_batches(7, 16, 0, 1, world_size=8)


STALE = {
    "value model": {"value_model": "0" * 16},
    "data": {"data": "synthetic:glyphs"},
    "seed": {"seed": 1},
    "split": {"num_items": 9},
}


@pytest.mark.parametrize("stale", [None, *STALE])
def test_labels_supervision_uses_only_labels_of_this_run(tmp_path, stale):
    """A label cache of another value model, domain, seed or split size is refused before training."""
    base = make_checkpoint(kind="base")
    torch.manual_seed(1)
    architecture = {**TINY, "num_classes": 5}
    value = Checkpoint(
        build_vit(architecture).eval(),
        base.meta.model_copy(update={"kind": "predict", "class_names": GEO, "architecture": architecture}),
    )
    cache = LabelCache(tmp_path)
    settings = {"value_model": fingerprint(value.model.state_dict()), "data": "synthetic:geo", "seed": 0,
                "budget": 8, "num_items": 8, "num_players": 16, "shard_size": 8}  # fmt: skip
    cache.create({**settings, **STALE.get(stale, {})})
    write_tensors(tmp_path / MERGED, {"values": torch.zeros(8, 16, 5)})
    config = TrainConfig(epochs=1, train_size=8, eval_size=4, batch_size=8)
    train = functools.partial(
        train_explainer, base, value, "synthetic:geo", config, supervision="labels", labels=cache
    )
    if stale is None:
        assert train().meta.explanation.supervision == "labels"
    else:
        with pytest.raises(ValueError, match=f"holds other labels: {next(iter(STALE[stale]))} "):
            train()


def test_pretrained_base_learned_the_mixture(base):
    assert base.meta.kind == "base"
    assert base.meta.metrics["val_accuracy"] >= 0.9
    assert len(base.meta.class_names) == 10


def test_finetune_on_an_unseen_domain_reaches_accuracy(base):
    # "textures" shares no class with the pretraining mixture: the head starts from scratch.
    config = TrainConfig(epochs=6, train_size=2000, eval_size=300, lr=1e-3)
    model = finetune(base, "synthetic:textures", config)
    shifted = Checkpoint(copy.deepcopy(model.model), model.meta)
    with torch.no_grad():
        shifted.model.head.bias[3] += 2.0  # a reference that predicts "checker" more often
    row = evaluate_checkpoint(model, "synthetic:textures", size=300, reference=shifted)
    assert row.accuracy >= 0.8  # measured 0.862 (seed 0)
    test = model.load_split("synthetic:textures", "test", size=300)
    images = torch.stack([test[i][0] for i in range(len(test))])
    with torch.no_grad():
        agreeing = model.model(images).argmax(-1) == shifted.model(images).argmax(-1)
    assert 0.5 < agreeing.float().mean().item() < 1.0
    assert row.agreement == pytest.approx(agreeing.float().mean().item())
    assert model.meta.base_fingerprint == base.meta.base_fingerprint
    assert model.meta.class_names == ["hstripes", "vstripes", "dstripes", "checker", "dots"]
    # The base is left untouched.
    assert not torch.equal(model.model.blocks[0].attn.qkv.weight, base.model.blocks[0].attn.qkv.weight)


def test_finetune_is_seeded(base):
    config = TrainConfig(epochs=1, train_size=128, eval_size=64)
    a, b = finetune(base, "synthetic:geo", config), finetune(base, "synthetic:geo", config)
    assert torch.equal(a.model.head.weight, b.model.head.weight)


def test_self_explaining_map_matches_shapley_values(base):
    """The embedding game makes the single-pass map track Kernel SHAP of the model's own logits."""
    from explainvec.data import load_data
    from explainvec.evaluation.metrics import pearson
    from explainvec.models.self_explaining import SelfExplainingViT
    from explainvec.shapley import kernel_shap
    from explainvec.shapley.model_games import MaskedModelGame
    from explainvec.training.explain import train_explainer

    predict = finetune(base, "synthetic:geo", TrainConfig(epochs=2, train_size=1000, eval_size=200))
    config = TrainConfig(epochs=2, train_size=1000, eval_size=200, lr=3e-4, keep_min=1.0, freeze_head=True)
    sem = train_explainer(base, predict, "synthetic:geo", config, supervision="embedding", alpha=0.05)
    test = load_data("synthetic:geo", "test", size=16, preprocess=base.meta.preprocess, patch_size=8)
    images = torch.stack([test[i][0] for i in range(16)])
    scores = {}
    for name, checkpoint in (("lambda0", predict), ("sem", sem)):
        model = SelfExplainingViT(checkpoint.model, checkpoint.meta.class_names, readout="logit")
        with torch.no_grad():
            out = model(images)
        reference = kernel_shap(MaskedModelGame(model.vit, images, "logit"), 512,
                                generator=torch.Generator().manual_seed(0))  # fmt: skip
        truth = reference.values[torch.arange(16), :, out.predicted]
        scores[name] = pearson(out.for_class(), truth).mean().item()
    assert scores["sem"] >= 0.8, scores
    # It closes most of the distance to a perfect map that the prediction-only model leaves.
    assert 1 - scores["sem"] < 0.5 * (1 - scores["lambda0"]), scores
    assert sem.meta.metrics["val_accuracy"] >= predict.meta.metrics["val_accuracy"] - 0.03


@pytest.mark.slow
def test_acceptance_self_explaining_vs_exact_shapley(base):
    """Issue acceptance at full size: Pearson ≥ 0.8 with exact Shapley values, accuracy within 2 points."""
    from explainvec.data import load_data
    from explainvec.evaluation.metrics import pearson
    from explainvec.models.self_explaining import SelfExplainingViT
    from explainvec.shapley import exact_shapley
    from explainvec.shapley.model_games import MaskedModelGame
    from explainvec.training.explain import train_explainer

    predict = finetune(base, "synthetic:geo", TrainConfig(epochs=4))
    config = TrainConfig(epochs=4, lr=3e-4, keep_min=1.0, freeze_head=True)
    sem = train_explainer(base, predict, "synthetic:geo", config, supervision="embedding", alpha=0.05)
    predict_accuracy, sem_accuracy = (
        evaluate_checkpoint(c, "synthetic:geo").accuracy for c in (predict, sem)
    )
    assert sem_accuracy >= predict_accuracy - 0.02
    test = load_data("synthetic:geo", "test", size=4, preprocess=base.meta.preprocess, patch_size=8)
    images = torch.stack([test[i][0] for i in range(4)])
    model = SelfExplainingViT.from_checkpoint(sem)
    with torch.no_grad():
        out = model(images)
    exact = exact_shapley(MaskedModelGame(model.vit, images, model.readout), chunk_size=4096)
    assert pearson(out.for_class(), exact.values[torch.arange(4), :, out.predicted]).mean() >= 0.8


def test_shared_vector_makes_each_source_model_explain_its_own_embedding(base):
    """τ trained on two source models at once lowers each one's embedding-game loss on unseen images."""
    from explainvec.shapley.model_games import MaskedModelGame
    from explainvec.shapley.sampling import sample_kernel_coalitions
    from explainvec.vectors import train_shared_vector

    config = TrainConfig(epochs=1, train_size=256, eval_size=64)
    predicts = [finetune(base, d, config) for d in ("synthetic:geo", "synthetic:geo-pastel")]
    tau = train_shared_vector(base, predicts, config.model_copy(update={"epochs": 2, "lr": 1e-3}), alpha=1.0)
    assert tau.meta.source_data == ["synthetic:geo", "synthetic:geo-pastel"]
    assert tau.meta.base_fingerprint == base.meta.base_fingerprint
    for predict in predicts:
        test = predict.load_split(predict.meta.training.data, "test", size=32)
        images = torch.stack([test[i][0] for i in range(32)])
        masks = sample_kernel_coalitions(32, 16, 16, generator=torch.Generator().manual_seed(5))
        target = MaskedModelGame(predict.model, images, "embedding")
        losses = []
        for lam in (0.0, 1.0):
            edited = tau.apply_to(predict.model, lam).eval()
            with torch.no_grad():
                tokens = edited.forward_features(images)
                full = target(torch.ones(32, 1, 16, dtype=torch.bool))[:, 0]
                empty = target(torch.zeros(32, 1, 16, dtype=torch.bool))[:, 0]
                phi = tokens[:, 1:] - tokens[:, 1:].mean(1, keepdim=True) + ((full - empty) / 16)[:, None]
                predicted = empty[:, None] + masks.float() @ phi
                losses.append((predicted - target(masks)).pow(2).mean().item())
        assert losses[1] < 0.8 * losses[0], losses
    with pytest.raises(ValueError, match="fingerprints differ"):
        other = predicts[0].meta.model_copy(update={"base_fingerprint": "someone-else"})
        train_shared_vector(base, [type(predicts[0])(predicts[0].model, other)], config)


def test_adapter_only_shared_vector_plays_the_game_on_other_images(base):
    """With ``game_data`` the sources' games run on those images (here ten classes, where the source
    heads have five: cross-entropy would fail on their labels), and the adapter learns them."""
    from explainvec.models.masking import masked_tokens
    from explainvec.training.supervision import AmortisedGameLoss
    from explainvec.vectors import train_shared_vector

    config = TrainConfig(epochs=1, train_size=256, eval_size=64)
    predicts = [finetune(base, "synthetic:geo", config)]
    tau = train_shared_vector(
        base,
        predicts,
        config.model_copy(update={"epochs": 3, "lr": 3e-3}),
        alpha=1.0,
        adapter="stream",
        backbone=False,
        game_data="synthetic:mixture",
    )
    assert tau.meta.explanation.game_data == "synthetic:mixture"
    test = base.load_split("synthetic:mixture", "test", size=32)
    images = torch.stack([test[i][0] for i in range(32)])
    game = AmortisedGameLoss(predicts[0].model, output="embedding", num_coalitions=16, seed=7)
    losses = []
    for lam in (0.0, 1.0):
        edited = tau.apply_to(predicts[0].model, lam).eval()
        with torch.no_grad():
            losses.append(game(edited, images, torch.arange(32), masked_tokens(edited, images)).item())
    assert losses[1] < 0.9 * losses[0], losses
    with pytest.raises(ValueError, match="adapter-only"):
        train_shared_vector(base, predicts, config, adapter="stream", game_data="synthetic:mixture")
