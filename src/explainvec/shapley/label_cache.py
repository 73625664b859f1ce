"""Kernel SHAP labels of a training set on disk: computed once, in shards, resumable, merged atomically.

Shards cover index ranges ``[start, stop)``; shard ``k`` belongs to rank ``k % world_size``, so several
processes or GPUs fill one cache without talking to each other. Each shard's sampling is seeded by its
start index, so the labels do not depend on how the work was split.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, ValidationError
from safetensors.torch import load_file
from timm.models.vision_transformer import VisionTransformer
from torch.utils.data import Dataset

from explainvec.io import write_json, write_tensors
from explainvec.models.records import Record, one_error
from explainvec.progress import SILENT, Tracker
from explainvec.shapley.kernel_shap import kernel_shap
from explainvec.shapley.model_games import MaskedModelGame
from explainvec.shapley.values import ShapleyValues
from explainvec.vocabulary import GameOutput, Split

MERGED = "labels.safetensors"
META = "meta.json"


def kernel_shap_shard(
    model: VisionTransformer, images: torch.Tensor, output: GameOutput, budget: int, *, seed: int, start: int
) -> ShapleyValues:
    """Kernel SHAP of the images ``[start, start + len(images))`` of a set, seeded by ``seed`` and ``start``
    only: labels and evaluation references split into shards this way do not depend on who computes
    which shard."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + start)
    return kernel_shap(MaskedModelGame(model, images, output), budget, generator=generator)


class LabelCacheMeta(Record):
    """What a label cache holds labels of (its ``meta.json``): Kernel SHAP values of ``value_model`` on
    the first ``num_items`` images of ``data``'s ``split``, ``budget`` evaluations per image."""

    value_model: str = Field(description="fingerprint of the value model's weights")
    data: str = Field(description="synthetic:<domain> or an image folder")
    split: Split = "train"
    output: GameOutput = "probability"
    budget: int = Field(ge=4, description="Kernel SHAP evaluations per image, v(∅) and v(all) included")
    num_items: int = Field(ge=0)
    num_players: int = Field(gt=0)
    shard_size: int = Field(gt=0)
    seed: int


class LabelCache:
    """A folder of label shards plus ``meta.json`` describing what they are labels of."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @property
    def meta(self) -> LabelCacheMeta:
        """The cache's ``meta.json``, validated (ValueError naming the file if it is not valid)."""
        path = self.folder / META
        if not path.is_file():
            raise FileNotFoundError(f"{self.folder} is not a label cache (no {META})")
        try:
            return LabelCacheMeta.model_validate_json(path.read_text())
        except ValidationError as error:  # also for a file that is not JSON
            raise ValueError(f"label cache metadata {path} is not valid: {one_error(error)}") from error

    def create(self, meta: LabelCacheMeta | Mapping[str, Any]) -> None:
        """Start a cache, or check that an existing one was made with the same settings."""
        meta = LabelCacheMeta.model_validate(meta)
        if (self.folder / META).is_file():
            self._check(meta.model_dump())
            return
        write_json(self.folder / META, meta.dump())

    def _check(self, expected: Mapping[str, Any]) -> None:
        """ValueError naming every setting of ``expected`` the cache's metadata differs in."""
        existing = self.meta
        differences = ", ".join(
            f"{name} {getattr(existing, name)!r} != {value!r}"
            for name, value in expected.items()
            if getattr(existing, name) != value
        )
        if differences:
            raise ValueError(f"label cache {self.folder} holds other labels: {differences}")

    def ranges(self) -> list[tuple[int, int]]:
        meta = self.meta
        n, size = meta.num_items, meta.shard_size
        return [(start, min(start + size, n)) for start in range(0, n, size)]

    def shard_path(self, start: int, stop: int) -> Path:
        return self.folder / f"shard-{start:07d}-{stop:07d}.safetensors"

    def missing(self) -> list[tuple[int, int]]:
        """Shards not yet on disk."""
        return [r for r in self.ranges() if not self.shard_path(*r).is_file()]

    def compute(
        self,
        model: VisionTransformer,
        data: Dataset,
        *,
        rank: int = 0,
        world_size: int = 1,
        device: str = "cpu",
        progress: Tracker = SILENT,
    ) -> int:
        """Compute this rank's missing shards; returns how many were computed."""
        meta = self.meta
        todo = [r for k, r in enumerate(self.ranges()) if k % world_size == rank and r in self.missing()]
        task = progress.task(f"Kernel SHAP labels (rank {rank})", total=len(todo))
        model = model.to(device).eval()
        for start, stop in todo:
            images = torch.stack([data[i][0] for i in range(start, stop)]).to(device)
            result = kernel_shap_shard(model, images, meta.output, meta.budget, seed=meta.seed, start=start)
            tensors = {"values": result.values.float()}
            if result.std_errors is not None:
                tensors["std_errors"] = result.std_errors.float()
            write_tensors(self.shard_path(start, stop), tensors)
            task.advance()
        return len(todo)

    def merge(self) -> Path:
        """Join all shards into ``labels.safetensors`` (atomically); refuses while shards are missing."""
        missing = self.missing()
        if missing:
            raise ValueError(
                f"label cache {self.folder} still misses {len(missing)} shards, e.g. {missing[0]}"
            )
        shards = [load_file(str(self.shard_path(*r))) for r in self.ranges()]
        merged = {key: torch.cat([s[key] for s in shards]) for key in shards[0]}
        return write_tensors(self.folder / MERGED, merged)

    def load(self) -> torch.Tensor:
        """The merged labels ``[N, P, C]`` (ValueError if any is NaN or infinite)."""
        return self.load_tensors()["values"]

    def load_tensors(self) -> dict[str, torch.Tensor]:
        """The merged ``values`` ``[N, P, C]`` and, where Kernel SHAP gave them, ``std_errors``."""
        path = self.folder / MERGED
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: compute and merge the label cache first")
        tensors = load_file(str(path))
        if not tensors["values"].isfinite().all():
            raise ValueError(f"{path} holds non-finite labels: compute the label cache again")
        return tensors

    def load_for(self, *, value_model: str, data: str, seed: int, num_items: int) -> torch.Tensor:
        """The merged labels, once the metadata says they are labels of ``value_model`` (a weights
        fingerprint) on the first ``num_items`` training images of ``data`` drawn with ``seed``
        (ValueError naming what differs: stale labels are never used)."""
        self._check({"value_model": value_model, "data": data, "seed": seed, "num_items": num_items})
        return self.load()
