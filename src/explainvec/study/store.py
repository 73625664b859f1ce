"""The models of a study, trained once and kept under its runs folder with how long each took."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from explainvec.io import atomic_write
from explainvec.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from explainvec.vectors import ExplainabilityVector


class ModelStore:
    """Checkpoints and vectors keyed by the JSON of their configuration; ``seconds(key)`` is the
    wall-clock it took to build one (recorded in ``timings.json`` beside them)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._timings_path = self.folder / "timings.json"
        self._timings = json.loads(self._timings_path.read_text()) if self._timings_path.is_file() else {}

    def path(self, key: dict, prefix: str = "") -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        return self.folder / f"{prefix}{digest}.safetensors"

    def seconds(self, key: dict, prefix: str = "") -> float | None:
        return self._timings.get(self.path(key, prefix).name)

    def checkpoint(self, key: dict, make: Callable[[], Checkpoint]) -> Checkpoint:
        path = self.path(key)
        if path.is_file():
            return load_checkpoint(path)
        checkpoint = self._timed(path, make)
        save_checkpoint(path, checkpoint)
        return checkpoint

    def vector(self, key: dict, make: Callable[[], ExplainabilityVector]) -> ExplainabilityVector:
        path = self.path(key, "tau-")
        if path.is_file():
            return ExplainabilityVector.load(path)
        tau = self._timed(path, make)
        tau.save(path)
        return tau

    def _timed(self, path: Path, make):
        start = time.perf_counter()
        result = make()
        self._timings[path.name] = time.perf_counter() - start
        atomic_write(self._timings_path, lambda tmp: tmp.write_text(json.dumps(self._timings, indent=1)))
        return result
