"""Training on real data: the session's pretrained base and fine-tuning from it."""

import torch

from explainvec.evaluation.evaluate import evaluate_checkpoint
from explainvec.training.config import TrainConfig
from explainvec.training.finetune import finetune


def test_pretrained_base_learned_the_mixture(base):
    assert base.meta.kind == "base"
    assert base.meta.metrics["val_accuracy"] >= 0.9
    assert len(base.meta.class_names) == 10


def test_finetune_on_an_unseen_domain_reaches_accuracy(base):
    # "textures" shares no class with the pretraining mixture: the head starts from scratch.
    config = TrainConfig(epochs=6, train_size=2000, eval_size=300, lr=1e-3)
    model = finetune(base, "synthetic:textures", config)
    row = evaluate_checkpoint(model, "synthetic:textures", size=300, reference=model)
    assert row.accuracy >= 0.8  # measured 0.862 (seed 0)
    assert row.agreement == 1.0
    assert model.meta.base_fingerprint == base.meta.base_fingerprint
    assert model.meta.class_names == ["hstripes", "vstripes", "dstripes", "checker", "dots"]
    # The base is left untouched.
    assert not torch.equal(model.model.blocks[0].attn.qkv.weight, base.model.blocks[0].attn.qkv.weight)


def test_finetune_is_seeded(base):
    config = TrainConfig(epochs=1, train_size=128, eval_size=64)
    a, b = finetune(base, "synthetic:geo", config), finetune(base, "synthetic:geo", config)
    assert torch.equal(a.model.head.weight, b.model.head.weight)
