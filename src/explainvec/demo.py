"""The embedded demo: the whole recipe, from nothing to a report with pictures.

``quick`` and ``fashion`` run in the hard regime, base and target trained without patch dropping as
ordinary supervised ViTs are, on the realistic synthetic scenes and on Fashion-MNIST; ``cells``, ``4x4``
and ``7x7`` run on the easy cell domains (one object per patch cell) with patch dropping.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel

from explainvec.evaluation.evaluate import suite_report
from explainvec.evaluation.explain_files import ImageItem, explain_to_folder
from explainvec.evaluation.report import Figure, Report
from explainvec.evaluation.samples import plot_domain_samples
from explainvec.evaluation.suite import SuiteConfig
from explainvec.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from explainvec.models.self_explaining import SelfExplainingViT, readout_of
from explainvec.models.vit import patch_size
from explainvec.progress import SILENT, Tracker
from explainvec.training.base_cache import cached_base
from explainvec.training.config import TrainConfig
from explainvec.training.finetune import finetune
from explainvec.training.pretrain import PRETRAIN_CONFIG
from explainvec.transfer import apply_vector
from explainvec.vectors import train_shared_vector
from explainvec.vectors.shared import SHARED_EPOCHS, SHARED_LR
from explainvec.vocabulary import DEFAULT_ADAPTER


class DemoPreset(BaseModel):
    """Sizes of one demo run."""

    grid: str
    epochs: int
    train_size: int
    eval_size: int
    fidelity_images: int
    reference_budget: int = 2048
    budgets: list[int] = [16, 32, 64, 150, 300, 600]
    source: str = "synthetic:geo"
    target: str = "synthetic:glyphs"
    pretrain_data: str = "synthetic:mixture"
    keep_min: float = 0.5
    """Patch dropping of the base and the prediction fine-tunes (1: none, the hard regime)."""
    vector_epochs: int = SHARED_EPOCHS
    """Epochs of the shared τ (the default explanation adapter on three source models)."""

    def configs(self, *, device: str = "cpu", seed: int = 0) -> tuple[TrainConfig, TrainConfig]:
        """The fine-tuning configs: prediction-only, and self-explaining (lr 3e-4, no patch dropping,
        head frozen)."""
        config = TrainConfig(
            epochs=self.epochs,
            train_size=self.train_size,
            eval_size=self.eval_size,
            seed=seed,
            device=device,
            keep_min=self.keep_min,
        )
        return config, config.model_copy(update={"lr": 3e-4, "keep_min": 1.0, "freeze_head": True})

    def vector_config(self, *, device: str = "cpu") -> TrainConfig:
        """The shared τ's training: the explanation adapter alone, at the ``vector`` command's learning
        rate."""
        return TrainConfig(
            epochs=self.vector_epochs, lr=SHARED_LR, train_size=self.train_size, keep_min=1.0, device=device
        )

    def base_config(self) -> TrainConfig:
        return PRETRAIN_CONFIG.model_copy(update={"keep_min": self.keep_min})


CELLS = DemoPreset(
    grid="4x4",
    epochs=2,
    train_size=1000,
    eval_size=300,
    fidelity_images=16,
    reference_budget=256,
    budgets=[16, 32, 64, 150],
)
"""The easy preset: one object per patch cell, trained with patch dropping."""

DEMO_PRESETS = {
    "quick": CELLS.model_copy(
        update={
            "source": "synthetic:scene-geo",
            "target": "synthetic:scene-glyphs",
            "pretrain_data": "synthetic:scene-mixture",
            "keep_min": 1.0,
        }
    ),
    "cells": CELLS,
    "4x4": DemoPreset(
        grid="4x4", epochs=4, train_size=2000, eval_size=500, fidelity_images=64, reference_budget=512
    ),
    "7x7": DemoPreset(
        grid="7x7", epochs=4, train_size=2000, eval_size=500, fidelity_images=32, reference_budget=1024
    ),
    "fashion": DemoPreset(
        grid="28px-7x7",
        epochs=2,
        train_size=1000,
        eval_size=500,
        fidelity_images=16,
        reference_budget=1024,
        budgets=[16, 32, 64, 150],
        source="fashion:tops",
        target="fashion:other",
        pretrain_data="fashion:all",
        keep_min=1.0,
    ),
}
HEATMAP_IMAGES = 4


def run_demo(preset: str, out: str | Path, *, device: str = "cpu", progress: Tracker = SILENT) -> Report:
    """Run the demo preset ``preset`` and write its report, models and figures under ``out``; fine-tuning,
    the λ search, the evaluation and the heatmaps run on ``device`` (the base is pretrained on CPU)."""
    if preset not in DEMO_PRESETS:
        raise ValueError(f"unknown demo preset {preset!r}; known: {', '.join(DEMO_PRESETS)}")
    settings = DEMO_PRESETS[preset]
    out = Path(out)
    timings: dict[str, float] = {}

    def timed(name, make):
        start = time.perf_counter()
        result = make()
        timings[name] = time.perf_counter() - start
        if isinstance(result, Checkpoint):
            save_checkpoint(out / "models" / f"{name}.safetensors", result)
        return result

    base = load_checkpoint(
        timed(
            "base",
            lambda: cached_base(
                settings.grid, settings.base_config(), data=settings.pretrain_data, progress=progress
            ),
        )
    )
    config, _ = settings.configs(device=device)
    source_predict = timed(
        "source_predict", lambda: finetune(base, settings.source, config, progress=progress)
    )
    target_predict = timed(
        "target_predict", lambda: finetune(base, settings.target, config, progress=progress)
    )
    oracle = timed("oracle", lambda: _oracle(base, target_predict, settings, device, progress))
    second_source = timed(
        "source_predict_seed1",
        lambda: finetune(base, settings.source, config.model_copy(update={"seed": 1}), progress=progress),
    )
    tau = timed(
        "tau",
        lambda: train_shared_vector(
            base,
            [source_predict, second_source, base],
            settings.vector_config(device=device),
            adapter=DEFAULT_ADAPTER,
            backbone=False,
            progress=progress,
        ),
    )
    tau.save(out / "models" / "tau.safetensors")
    transferred = apply_vector(
        target_predict, tau, "auto", data=settings.target, device=device, progress=progress
    )
    lam, readout = transferred.meta.explanation.lam, readout_of(transferred)
    save_checkpoint(out / "models" / "transferred.safetensors", transferred)
    source_transferred = apply_vector(source_predict, tau, 1.0, device=device)

    suite = SuiteConfig(reference_budget=settings.reference_budget, budgets=settings.budgets)
    common = {
        "images": settings.fidelity_images,
        "size": settings.eval_size,
        "config": suite,
        "device": device,
        "progress": progress,
    }
    report = timed(
        "evaluate",
        lambda: suite_report(
            transferred,
            settings.target,
            out,
            name="transferred",
            reference=target_predict,
            oracle=oracle,
            vector=tau,
            title=f"explainvec demo ({preset})",
            **common,
        ),
    )
    source_report = suite_report(
        source_transferred,
        settings.source,
        out / "source",
        name="source_transferred",
        reference=source_predict,
        baselines=(),
        **{**common, "config": suite.model_copy(update={"budgets": []})},
    )
    for row in source_report.rows:
        row.method = "source_lambda0" if row.method == "lambda0" else row.method
    _heatmaps(transferred, settings.target, out / "heatmaps" / "transferred", readout, device)
    _heatmaps(target_predict, settings.target, out / "heatmaps" / "lambda0", readout, device)
    _heatmaps(source_transferred, settings.source, out / "heatmaps" / "source_transferred", readout, device)
    plot_domain_samples(
        [settings.source, settings.target], base.meta.preprocess, out / "domains.png", patch_size(base.model)
    )
    report.preset = preset
    report.rows += source_report.rows
    report.figures.append(Figure(path="domains.png", caption="samples of the source and target domains"))
    report.notes = [
        f"source {settings.source} → target {settings.target}; τ: the {DEFAULT_ADAPTER} adapter trained on "
        "three source models (the source fine-tuned with seeds 0 and 1, and the base itself), their "
        f"games played on the base's pretraining images ({tau.meta.explanation.game_data}), so no "
        f"prediction changes and at λ = 0 the map is the direct attribution; τ norm {tau.norm():.3f}; "
        f"λ = {lam:g}, chosen "
        "without labels on 128 target val images (the map that best fits the target's own masked outputs, "
        "with ≥ 99 % agreement)",
        "source_* rows are measured on the source test split (full report in source/), the others on the "
        "target's; source_transferred: τ on the source model it was trained on (λ = 1); oracle: the same "
        "recipe trained on the target model alone, its games played on the target's own training images "
        "(λ = 1); random_vector: a random vector with τ's per-block norms applied at the same λ",
        *report.notes,
        f"base: {settings.grid} tiny ViT pretrained on {settings.pretrain_data} "
        f"(val accuracy {base.meta.metrics['val_accuracy']:.3f}); base and prediction fine-tunes "
        + ("without patch dropping (the hard regime)" if settings.keep_min == 1 else "with patch dropping"),
        "wall-clock seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()),
        "heatmaps per image: heatmaps/transferred/, heatmaps/lambda0/, heatmaps/source_transferred/",
    ]
    report.write(out)
    return report


def _oracle(
    base: Checkpoint, target: Checkpoint, settings: DemoPreset, device: str, progress: Tracker
) -> Checkpoint:
    """What the demo's τ could be at best: its recipe trained on the target model alone, with the
    target's own training images, added at λ = 1."""
    tau = train_shared_vector(
        base,
        [target],
        settings.vector_config(device=device),
        adapter=DEFAULT_ADAPTER,
        backbone=False,
        game_data=None,
        progress=progress,
    )
    return apply_vector(target, tau, 1.0, device=device)


def _heatmaps(checkpoint: Checkpoint, data: str, folder: Path, readout: str, device: str) -> None:
    test = checkpoint.load_split(data, "test", size=HEATMAP_IMAGES)
    sem = SelfExplainingViT(checkpoint.model, checkpoint.meta.class_names, readout)
    items = [
        ImageItem(f"{i:03d}-{test.class_names[test[i][1]]}", test[i][0], test[i][2]) for i in range(len(test))
    ]
    explain_to_folder(sem.eval(), checkpoint.meta.preprocess, items, folder, device=device)
