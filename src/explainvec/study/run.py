"""Running a study: for every base and target seed, τ of every recipe transferred to the target, and
every row measured on the same test images as the free baselines beside it.

Results (``<runs>/<name>.json``) hold, per cell ``b<base>-s<seed>``, each row's λ, accuracy, agreement
and per-image values, so tables and paired intervals are computed from them afterwards and a study can be
extended and rerun: finished rows are kept, and every model is trained once (:class:`ModelStore`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

from explainvec.evaluation.evaluate import evaluate_checkpoint, suite_batch
from explainvec.evaluation.suite import SuiteConfig, reference_values
from explainvec.io import atomic_write
from explainvec.models.adapter import ADAPTER
from explainvec.models.checkpoint import Checkpoint, load_checkpoint
from explainvec.models.fingerprint import fingerprint
from explainvec.models.self_explaining import SelfExplainingViT, readout_of
from explainvec.models.vit import num_patches
from explainvec.progress import SILENT, Tracker
from explainvec.study.config import Study, Variant
from explainvec.study.distance import measure_distances
from explainvec.study.measure import per_image
from explainvec.study.store import ModelStore
from explainvec.training.base_cache import cached_base
from explainvec.training.config import TrainConfig
from explainvec.training.explain import train_explainer
from explainvec.training.finetune import finetune
from explainvec.training.pretrain import PRETRAIN_CONFIG
from explainvec.transfer import apply_vector
from explainvec.vectors import ExplainabilityVector, train_shared_vector


def cell_name(base: int, seed: int) -> str:
    return f"b{base}-s{seed}"


class StudyRun:
    """The models of one study and how they are built (each once, through the store)."""

    def __init__(self, study: Study, runs: Path, progress: Tracker) -> None:
        self.study, self.store, self.progress = study, ModelStore(runs), progress
        self.predict_config = TrainConfig(
            epochs=study.predict_epochs,
            lr=study.predict_lr,
            keep_min=study.predict_keep_min,
            train_size=study.train_size,
            eval_size=study.eval_size,
        )

    def base(self, seed: int) -> Checkpoint:
        update = {
            "keep_min": self.study.base_keep_min,
            "seed": seed,
            "epochs": self.study.pretrain_epochs,
            "train_size": self.study.pretrain_size,
        }
        config = PRETRAIN_CONFIG.model_copy(update=update)
        path = cached_base(self.study.grid, config, data=self.study.pretrain_data, progress=self.progress)
        return load_checkpoint(path)

    def predict_key(self, base: Checkpoint, data: str, seed: int = 0, **update) -> dict:
        config = self.predict_config.model_copy(update={"seed": seed, **update})
        return {"base": base.meta.base_fingerprint, "data": data, "config": config.model_dump()}

    def predict(self, base: Checkpoint, data: str, seed: int = 0, **update) -> Checkpoint:
        """The prediction fine-tune of ``data`` (``update``: other settings than the study's, e.g. lr)."""
        config = self.predict_config.model_copy(update={"seed": seed, **update})
        key = self.predict_key(base, data, seed, **update)
        return self.store.checkpoint(key, lambda: finetune(base, data, config, progress=self.progress))

    def explain_key(self, base: Checkpoint, variant: Variant, data: str, seed: int = 0) -> dict:
        recipe = variant.model_dump(exclude={"name", "sources", "blocks", "recipe", "backbone"})
        return {"explain": self.predict_key(base, data, seed), "recipe": recipe}

    def explainer(self, base: Checkpoint, variant: Variant, data: str, seed: int = 0) -> Checkpoint:
        value = self.predict(base, data, seed)
        config = self._explain_config(variant, seed)
        return self.store.checkpoint(
            self.explain_key(base, variant, data, seed),
            lambda: train_explainer(
                base,
                value,
                data,
                config,
                supervision=variant.supervision,
                alpha=variant.alpha,
                num_coalitions=variant.coalitions,
                init=variant.init,
                adapter=variant.adapter,
                progress=self.progress,
            ),
        )

    def _explain_config(self, variant: Variant, seed: int) -> TrainConfig:
        update = {
            "lr": variant.lr,
            "epochs": variant.epochs or self.study.predict_epochs,
            "keep_min": variant.keep_min,
            "freeze_head": variant.freeze_head,
            "seed": seed,
        }
        return self.predict_config.model_copy(update=update)

    def sources(self, variant: Variant) -> list[str]:
        return variant.sources or [self.study.source]

    def tau(self, base: Checkpoint, variant: Variant) -> tuple[ExplainabilityVector, float]:
        """τ of ``variant`` on ``base`` and its cost: the seconds spent building it (self-explaining
        training, or the shared τ's training) ÷ the seconds of one prediction fine-tune of the source."""
        sources = self.sources(variant)
        if variant.recipe == "shared":
            predicts = [self.predict(base, s, seed) for s in sources for seed in variant.source_seeds]
            predicts += [base] if variant.with_base else []
            shared = variant.model_dump(exclude={"name", "blocks"})
            key = {
                "base": base.meta.base_fingerprint,
                "shared": shared,
                "steps": "per source batch",  # τ cached before this were trained on the summed loss
                "predict": self.predict_config.model_dump(),
            }
            tau = self.store.vector(
                key,
                lambda: train_shared_vector(
                    base,
                    predicts,
                    self._explain_config(variant, 0),
                    alpha=variant.alpha,
                    num_coalitions=variant.coalitions,
                    adapter=variant.adapter,
                    backbone=variant.backbone,
                    game_data=variant.game_data,
                    progress=self.progress,
                ),
            )
            spent = self.store.seconds(key, "tau-")
        else:
            taus = [
                ExplainabilityVector.from_checkpoints(self.explainer(base, variant, s), self.predict(base, s))
                for s in sources
            ]
            tau = sum(taus[1:], taus[0])
            spent = sum(self.store.seconds(self.explain_key(base, variant, s)) or 0.0 for s in sources)
        if variant.blocks is not None:
            kept = {
                k: v for k, v in tau.tensors.items() if any(k.startswith(b + ".") for b in variant.blocks)
            }
            tau = ExplainabilityVector(kept, tau.meta)
        predict_seconds = self.store.seconds(self.predict_key(base, sources[0]))
        return tau, (spent / predict_seconds if spent and predict_seconds else float("nan"))


def run_study(
    study: Study,
    runs: str | Path,
    *,
    name: str = "study",
    progress: Tracker = SILENT,
    only: list[str] | None = None,
) -> dict:
    """Run (or extend) ``study`` with its models under ``runs``; returns and writes ``<runs>/<name>.json``.
    ``only``: rerun just these variants (default: every row not yet in the results)."""
    runs = Path(runs)
    run = StudyRun(study, runs, progress)
    results_path = runs / f"{name}.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results["study"] = study.model_dump()
    cells = results.setdefault("cells", {})
    names = {v.name for v in study.variants}
    if study.oracle_recipe is not None and study.oracle_recipe not in names:
        raise ValueError(f"oracle_recipe {study.oracle_recipe!r} is not a variant of the study")
    unknown = sorted(set(only or ()) - names)
    if unknown:
        raise ValueError(f"no variant of the study is named {', '.join(map(repr, unknown))} (only)")

    def save() -> None:
        atomic_write(results_path, lambda tmp: tmp.write_text(json.dumps(results, indent=1)))

    task = progress.task("study cells", total=len(study.bases) * len(study.target_seeds))
    for base_seed in study.bases:
        base = run.base(base_seed)
        for seed in study.target_seeds:
            cell = Cell(run, base, seed, cells.setdefault(cell_name(base_seed, seed), {}))
            cell.baselines(save)
            if study.oracle_recipe and seed == study.target_seeds[0]:
                cell.oracle(save)
            for variant in study.variants:
                if (only and variant.name in only) or (not only and variant.name not in cell.rows):
                    cell.variant(variant, save)
            results["players"] = num_patches(cell.target.model)
            task.advance()
    if study.distances:
        measure_distances(run, results.setdefault("distances", {}), save)
    save()
    return results


class Cell:
    """One (base, target seed) pair: the target, its test images, and the rows measured on them."""

    def __init__(self, run: StudyRun, base: Checkpoint, seed: int, rows: dict) -> None:
        self.run, self.base, self.seed, self.rows = run, base, seed, rows
        study = run.study
        self.target = run.predict(base, study.target, seed)
        self.batch = suite_batch(self.target, study.target, study.fidelity_images, None, self.target)
        self.suite = SuiteConfig(
            reference_budget=study.reference_budget, exact_reference=study.exact_reference
        )
        self._references: dict[str, torch.Tensor] = {}

    @functools.cached_property
    def val_images(self):
        """The unlabelled target val images the λ search of every variant uses."""
        study = self.run.study
        return self.target.split_images(study.target, "val", study.lambda_images)

    def accuracy(self, checkpoint: Checkpoint) -> dict:
        """Accuracy, and agreement with the target, on the test split."""
        study = self.run.study
        row = evaluate_checkpoint(checkpoint, study.target, reference=self.target, size=study.eval_size)
        return {"accuracy": row.accuracy, "agreement": row.agreement}

    def reference(self, model: SelfExplainingViT) -> torch.Tensor:
        """``model``'s reference Shapley values on the cell's images, computed once per game: the
        explanation adapter plays no part in it (it never reaches the class token), so models that differ
        only there, or not at all (λ = 0), share one."""
        state = {k: v for k, v in model.vit.state_dict().items() if not k.startswith(ADAPTER + ".")}
        key = f"{fingerprint(state)}-{model.readout}"
        if key not in self._references:
            self._references[key] = reference_values(model, self.batch, self.suite).values
        return self._references[key]

    def measured(self, checkpoint: Checkpoint) -> dict:
        """Accuracy, agreement and the per-image fidelity of ``checkpoint``'s single pass against its own
        reference Shapley values."""
        model = SelfExplainingViT(
            checkpoint.model, checkpoint.meta.class_names, readout_of(checkpoint)
        ).eval()
        return {**self.accuracy(checkpoint), "per_image": per_image(model, self.batch, self.reference(model))}

    def baselines(self, save) -> None:
        """λ = 0 (the target's head on its patch tokens) and the study's baselines, all explaining the
        target and scored against its one reference."""
        missing = [r for r in ["lambda0", *self.run.study.baselines] if r not in self.rows]
        if not missing:
            return
        model = SelfExplainingViT(
            self.target.model, self.target.meta.class_names, readout_of(self.target)
        ).eval()
        reference = self.reference(model)
        accuracy = self.accuracy(self.target)
        for name in missing:
            attributor = "single_pass" if name == "lambda0" else name
            self.rows[name] = {**accuracy, "per_image": per_image(model, self.batch, reference, attributor)}
            save()

    def oracle(self, save) -> None:
        """A self-explaining model trained on the target itself with the oracle recipe: the self-explaining
        fine-tune of a ``difference`` recipe, or a ``shared`` recipe's τ trained on the target model alone
        (its own game on its own training images; no labels) and added at λ = 1. Measured again when the
        recipe changes."""
        study = self.run.study
        if self.rows.get("oracle", {}).get("recipe") == study.oracle_recipe:
            return
        variant = next(v for v in study.variants if v.name == study.oracle_recipe)
        if variant.recipe == "shared":
            own = dict(sources=[study.target], source_seeds=[self.seed], with_base=False, game_data=None)
            tau, _ = self.run.tau(self.base, variant.model_copy(update=own))
            model = apply_vector(self.target, tau, 1.0)
        else:
            model = self.run.explainer(self.base, variant, study.target, self.seed)
        self.rows["oracle"] = {**self.measured(model), "recipe": variant.name}
        save()

    def variant(self, variant: Variant, save) -> None:
        """τ of ``variant`` transferred with the label-free λ search, measured like every other row."""
        tau, cost = self.run.tau(self.base, variant)
        edited = apply_vector(
            self.target, tau, "auto", data=self.val_images, criterion=self.run.study.lambda_criterion
        )
        self.rows[variant.name] = {
            **self.measured(edited),
            "lambda": edited.meta.explanation.lam,
            "curve": edited.meta.explanation.lambda_curve,
            "cost": cost,
        }
        save()
