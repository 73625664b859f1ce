"""The words the library and the command line share, each declared once."""

from __future__ import annotations

from typing import Literal

import torch

Readout = Literal["probability", "logit"]
"""What the single-pass map explains: class probabilities or logits."""

GameOutput = Literal["probability", "logit", "embedding"]
"""The value of a coalition: class probabilities, logits, or the final-norm class-token embedding."""

Supervision = Literal["amortised", "logit", "embedding", "labels"]
"""How a self-explaining model is trained (README: "What the explanation is")."""

GAME_OUTPUT: dict[Supervision, GameOutput] = {
    "amortised": "probability",
    "logit": "logit",
    "embedding": "embedding",
}
"""The game each amortised supervision plays (``labels`` regresses on a label cache's game instead)."""

READOUT: dict[Supervision, Readout] = {
    "amortised": "probability",
    "logit": "logit",
    "embedding": "logit",
    "labels": "probability",
}
"""The read-out a model trained with each supervision explains."""

DEFAULT_READOUT: Readout = "logit"
"""The read-out of a checkpoint that records none (a prediction-only model, λ = 0)."""

LambdaCriterion = Literal["shapley_fit", "insertion_deletion"]
"""How ``apply --lam auto`` scores a λ without labels: the edited map's fit to the unedited target's own
masked outputs on a bank of coalitions evaluated once, or insertion − deletion of the edited model."""

DEFAULT_LAMBDA_CRITERION: LambdaCriterion = "shapley_fit"

AdapterKind = Literal["stream", "two-hop", "two-hop-mlp", "contributions"]
"""The kinds of explanation adapter (``models/adapter.py``)."""
AdapterChoice = Literal["stream", "two-hop", "two-hop-mlp", "contributions", "none"]
"""The explanation adapter a shared τ carries: an ``AdapterKind``, or ``none`` (τ on the backbone only)."""
DEFAULT_ADAPTER: AdapterChoice = "two-hop-mlp"
"""Measured best in the hard regime (docs/transfer.md): at λ = 0 its map is the direct attribution."""

Init = Literal["value", "base"]
"""Where a self-explaining fine-tune starts: from the value model or from the base."""

Split = Literal["train", "val", "test"]
"""A data split."""

Mode = Literal["predict", "explain"]
CheckpointKind = Literal["base", "predict", "explain", "edited"]
Precision = Literal["32-true", "bf16-mixed", "16-mixed"]


def class_values(logits: torch.Tensor, output: Readout) -> torch.Tensor:
    """The game's value from logits: softmax probabilities or the logits themselves."""
    return logits.softmax(-1) if output == "probability" else logits


Overlays = Literal["top1", "topk", "none"]
"""Which overlay PNGs ``explain`` draws: the predicted class's map, the top-k classes' maps, or none."""

MapsFormat = Literal["npy", "json"]
"""Where ``explain`` writes the raw maps: one memory-mappable ``attributions.npy``, or in the JSON."""
