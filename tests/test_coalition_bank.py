"""The coalition bank of the amortised loss: the frozen value model runs once per training item, its
values are those a fresh evaluation of the same coalitions gives, and data-parallel processes share it."""

from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp

from explainvec.models.masking import masked_tokens
from explainvec.shapley.model_games import MaskedModelGame
from explainvec.training.seeding import epoch_order
from explainvec.training.supervision import AmortisedGameLoss
from tiny import TINY, make_checkpoint

ITEMS, K = 12, 6


def value_model_and_images():
    torch.manual_seed(1)
    return make_checkpoint(TINY, seed=3).model, torch.randn(ITEMS, 3, 32, 32)


def counted(loss: AmortisedGameLoss) -> list[int]:
    """Images the value model embeds (once per image and call), counted through its patch embedding."""
    seen = [0]

    def hook(_module, args, _output):
        seen[0] += len(args[0])

    loss.value_model.patch_embed.register_forward_hook(hook)
    return seen


def run_epochs(loss: AmortisedGameLoss, model, images: torch.Tensor, epochs: int) -> list[float]:
    losses = []
    for epoch in range(epochs):
        for indices in epoch_order(ITEMS, 0, epoch).split(5):
            tokens = masked_tokens(model, images[indices])
            losses.append(loss(model, images[indices], indices, tokens, epoch).item())
    return losses


@pytest.mark.parametrize("output", ["embedding", "logit"])
def test_the_value_model_runs_once_per_item_across_epochs(output):
    value_model, images = value_model_and_images()
    model = make_checkpoint(TINY, seed=4).model
    banked = AmortisedGameLoss(value_model, output=output, num_coalitions=K)
    twin = make_checkpoint(TINY, seed=3).model
    fresh = AmortisedGameLoss(twin, output=output, num_coalitions=K, bank=False)
    calls = {"bank": counted(banked), "fresh": counted(fresh)}
    with torch.no_grad():
        run_epochs(banked, model, images, epochs=3)
        run_epochs(fresh, model, images, epochs=3)
    assert calls == {"bank": [ITEMS], "fresh": [3 * ITEMS]}
    assert sorted(banked.bank) == list(range(ITEMS)) and fresh.bank is None


def test_bank_values_equal_a_fresh_evaluation_of_the_same_coalitions():
    value_model, images = value_model_and_images()
    model = make_checkpoint(TINY, seed=4).model
    banked = AmortisedGameLoss(value_model, output="embedding", num_coalitions=K)
    fresh = AmortisedGameLoss(value_model, output="embedding", num_coalitions=K, bank=False)
    with torch.no_grad():
        epoch0 = run_epochs(banked, model, images, epochs=1)
        assert epoch0 == pytest.approx(run_epochs(fresh, model, images, epochs=1), rel=1e-6)
        game = MaskedModelGame(value_model, images, "embedding")
        for i in range(ITEMS):
            masks, values = banked.bank[i]
            assert masks.shape == (K + 2, 16) and masks[0].all() and not masks[1].any()
            assert torch.equal(masks, fresh.coalitions(i, 0, 16))  # the epoch-0 draw
            fresh_values = game(masks[None].expand(ITEMS, -1, -1))[i]
            torch.testing.assert_close(values, fresh_values, atol=1e-5, rtol=1e-5)
        # Later epochs reuse the bank (the same loss per item), where fresh coalitions change it.
        order = epoch_order(ITEMS, 0, 0).split(5)
        for epoch in (1, 2):
            for indices, before in zip(order, epoch0, strict=True):
                tokens = masked_tokens(model, images[indices])
                assert banked(model, images[indices], indices, tokens, epoch).item() == pytest.approx(before)
                assert fresh(model, images[indices], indices, tokens, epoch).item() != pytest.approx(before)


def test_the_bank_gives_gradients_to_the_trained_model():
    value_model, images = value_model_and_images()
    model = make_checkpoint(TINY, seed=4).model.train()
    loss = AmortisedGameLoss(value_model, output="embedding", num_coalitions=K)
    indices = torch.arange(4)
    for _ in range(2):  # filling the bank, then reading it
        model.zero_grad()
        loss(model, images[:4], indices, masked_tokens(model, images[:4]), 0).backward()
        assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in value_model.parameters())


def _fill_in_two_processes(rank: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["BANK_TEST_PORT"])
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    value_model, images = value_model_and_images()
    loss = AmortisedGameLoss(value_model, output="embedding", num_coalitions=K)
    calls = counted(loss)
    model = make_checkpoint(TINY, seed=4).model
    with torch.no_grad():
        for epoch in range(3):
            for batch in epoch_order(ITEMS, 0, epoch).split(5):
                indices = batch.tensor_split(2)[rank]  # this process's slice of the global batch
                loss(model, images[indices], indices, masked_tokens(model, images[indices]), epoch)
    torch.save({"calls": calls[0], "bank": loss.bank}, f"{folder}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_processes_share_one_bank(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        os.environ["BANK_TEST_PORT"] = str(s.getsockname()[1])
    mp.spawn(_fill_in_two_processes, args=(str(tmp_path),), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert sum(r["calls"] for r in ranks) == ITEMS  # every item evaluated once in all
    value_model, images = value_model_and_images()
    one = AmortisedGameLoss(value_model, output="embedding", num_coalitions=K)
    with torch.no_grad():
        run_epochs(one, make_checkpoint(TINY, seed=4).model, images, epochs=1)
    for r in ranks:
        assert sorted(r["bank"]) == list(range(ITEMS))
        for i, (masks, values) in one.bank.items():
            assert torch.equal(r["bank"][i][0], masks)
            torch.testing.assert_close(r["bank"][i][1], values, atol=1e-5, rtol=1e-5)
