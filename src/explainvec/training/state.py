"""A resumable training state in one safetensors file: weights, optimizer moments, step and loss curve.

Written atomically (temp file + rename) and without pickle; the scalars travel as JSON in the
safetensors header. A run resumed from it ends with the same weights as an uninterrupted one because
every random draw of the loop is seeded by (seed, epoch, item), not by a stream that the kill cut.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from explainvec.io import atomic_write, non_finite

FORMAT = "explainvec-train-state/1"


def state_path(out: str | Path) -> Path:
    """Where ``train --out OUT`` keeps its resumable state: ``OUT`` with ``.train-state.safetensors``."""
    out = Path(out)
    return out.with_name(out.stem + ".train-state.safetensors")


def save_state(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, history: list[float],
    epoch_losses: list[float],
) -> Path:  # fmt: skip
    """Write the state after ``step`` optimizer steps (model, optimizer, losses so far)."""
    tensors = {f"model.{n}": t.detach().cpu().contiguous() for n, t in model.state_dict().items()}
    optim = optimizer.state_dict()
    for index, slots in optim["state"].items():
        for key, value in slots.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    name = non_finite(tensors)
    if name is not None:
        raise ValueError(f"training diverged: {name} holds NaN or Inf at step {step}; state not written")
    header = {"format": FORMAT, "step": step, "history": history, "epoch_losses": epoch_losses,
              "param_groups": optim["param_groups"]}  # fmt: skip
    return atomic_write(
        path, lambda tmp: save_file(tensors, str(tmp), metadata={"state": json.dumps(header)})
    )


def load_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, list, list]:
    """Restore ``model`` and ``optimizer`` from ``path``; returns (step, history, epoch_losses)."""
    with safe_open(str(path), framework="pt") as file:
        header = json.loads((file.metadata() or {}).get("state", "{}"))
        if header.get("format") != FORMAT:
            raise ValueError(f"{path} is not an explainvec training state")
        tensors = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118 (safe_open has no iterator)
    weights = {k.removeprefix("model."): t for k, t in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(f"{path} holds the state of another model: {str(error).splitlines()[0]}") from error
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            slots.setdefault(int(index), {})[name] = tensor
    optimizer.load_state_dict({"state": slots, "param_groups": header["param_groups"]})
    return header["step"], header["history"], header["epoch_losses"]
