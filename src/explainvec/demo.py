"""The embedded demo: the whole recipe on synthetic domains, from nothing to a report with pictures."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel
from rich.progress import Progress

from explainvec.evaluation.evaluate import evaluate_checkpoint
from explainvec.evaluation.report import Report
from explainvec.evaluation.samples import plot_domain_samples
from explainvec.models.checkpoint import load_checkpoint, save_checkpoint
from explainvec.training.base_cache import cached_base
from explainvec.training.config import TrainConfig
from explainvec.training.finetune import finetune


class DemoPreset(BaseModel):
    """Sizes of one demo run."""

    grid: str
    epochs: int
    train_size: int
    eval_size: int
    source: str = "synthetic:geo"
    target: str = "synthetic:glyphs"


DEMO_PRESETS = {
    "quick": DemoPreset(grid="4x4", epochs=2, train_size=1000, eval_size=300),
    "4x4": DemoPreset(grid="4x4", epochs=4, train_size=2000, eval_size=500),
    "7x7": DemoPreset(grid="7x7", epochs=4, train_size=2000, eval_size=500),
}


def run_demo(preset: str, out: str | Path, *, progress: Progress | None = None) -> Report:
    """Run the demo preset ``preset`` and write its report, models and figures under ``out``."""
    if preset not in DEMO_PRESETS:
        raise ValueError(f"unknown demo preset {preset!r}; known: {', '.join(DEMO_PRESETS)}")
    settings = DEMO_PRESETS[preset]
    out = Path(out)
    timings = {}

    start = time.perf_counter()
    base = load_checkpoint(cached_base(settings.grid, progress=progress))
    timings["base"] = time.perf_counter() - start

    config = TrainConfig(epochs=settings.epochs, train_size=settings.train_size, eval_size=settings.eval_size)
    models = {}
    for role, data in (("source_predict", settings.source), ("target_predict", settings.target)):
        start = time.perf_counter()
        models[role] = finetune(base, data, config, progress=progress)
        timings[role] = time.perf_counter() - start
        save_checkpoint(out / "models" / f"{role}.safetensors", models[role])

    target = evaluate_checkpoint(
        models["target_predict"],
        settings.target,
        method="lambda0",
        size=settings.eval_size,
        progress=progress,
    )
    source = evaluate_checkpoint(
        models["source_predict"], settings.source, size=settings.eval_size, progress=progress
    )
    plot_domain_samples([settings.source, settings.target], base.meta.preprocess, out / "domains.png")
    report = Report(
        title=f"explainvec demo ({preset})",
        data=settings.target,
        preset=preset,
        rows=[target],
        notes=[
            f"base: {settings.grid} tiny ViT, val accuracy on the mixture "
            f"{base.meta.metrics['val_accuracy']:.3f}",
            f"source {settings.source}: prediction-only test accuracy {source.accuracy:.3f}",
            "wall-clock seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()),
            "![samples of the source and target domains](domains.png)",
        ],
    )
    report.write(out)
    return report
