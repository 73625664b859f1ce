"""The distributed engine: Lightning Fabric, one process on CPU by default, DDP across GPUs and nodes.

Fabric was chosen over Accelerate because it keeps the training loop ours (``setup``, ``backward``,
``all_reduce``) and runs the same DDP code on CPU with gloo, which is how the two-process equivalence
is tested on machines without GPUs. Launch several processes with Fabric's own launcher
(``fabric run --devices N``), ``torchrun``, SLURM, or let ``--devices N`` start them locally.
"""

from __future__ import annotations

from lightning_fabric import Fabric
from lightning_fabric.connector import _is_using_cli  # the test Fabric.launch() refuses on

from explainvec.training.config import TrainConfig


def accelerator_of(device: str) -> str:
    """Fabric's accelerator name for a torch device string (``cpu``, ``cuda``, ``cuda:0``, ``auto``)."""
    kind = device.split(":")[0]
    return {"cuda": "gpu", "gpu": "gpu", "cpu": "cpu", "mps": "mps", "auto": "auto"}.get(kind, kind)


def make_fabric(config: TrainConfig) -> Fabric:
    """A Fabric for ``config`` (devices, nodes, precision); one process needs no launcher.
    ``device="cuda:N"`` with one process runs on GPU N."""
    distributed = config.devices > 1 or config.num_nodes > 1
    kind, _, index = config.device.partition(":")
    return Fabric(
        accelerator=accelerator_of(kind),
        devices=[int(index)] if index and not distributed else config.devices,
        num_nodes=config.num_nodes,
        strategy="ddp" if distributed else "auto",
        precision=config.precision,
    )


def launch(config: TrainConfig) -> Fabric:
    """Start (or join) the processes of a run; every rank returns its Fabric. Under ``fabric run`` the
    processes exist and Fabric sets them up itself (it refuses a second ``launch``)."""
    fabric = make_fabric(config)
    if not _is_using_cli():
        fabric.launch()
    return fabric
