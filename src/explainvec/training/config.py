"""Validated training settings, stored in every checkpoint's sidecar."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from explainvec.vocabulary import Precision


class TrainConfig(BaseModel):
    """Optimisation settings shared by pretraining and fine-tuning."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=4, ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=5e-4, gt=0)
    weight_decay: float = Field(default=0.05, ge=0)
    warmup: float = Field(default=0.1, ge=0, lt=1, description="fraction of steps with linear warm-up")
    keep_min: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="patch dropping: each image keeps a U[keep_min, 1] share of patches",
    )
    freeze_head: bool = False
    train_size: int = Field(default=2000, ge=1, description="synthetic data only: training images")
    eval_size: int = Field(default=500, ge=1, description="synthetic data only: validation and test images")
    seed: int = 0
    device: str = Field(default="cpu", description="cpu, cuda, or auto")
    devices: int = Field(default=1, ge=1, description="processes per node (GPUs, or CPU processes with gloo)")
    num_nodes: int = Field(default=1, ge=1)
    precision: Precision = "32-true"
    workers: int = Field(default=0, ge=0, description="data-loading worker processes per training process")
    save_every: int = Field(
        default=0, ge=0, description="write the resumable training state every N steps (0: each epoch)"
    )
