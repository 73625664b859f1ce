"""The transfer study: which recipe makes ``θ_tgt + λ·τ`` explain the target well in one pass.

A study is a JSON file (see ``experiments/transfer/``): one base, one target, and variants of how the
explainability vector is made. For each variant the script trains the source models (cached under
``--runs``), builds τ, chooses λ on 128 unlabelled target val images (best insertion − deletion with
≥ 99 % agreement, as ``apply --lam auto`` does), and measures the transferred model on target test
images: accuracy, agreement with the unedited target, Pearson of the single-pass map (predicted class)
with Kernel SHAP of the same model's read-out game, insertion/deletion AUC. Reference rows: the
target's λ = 0 map, Kernel SHAP-150, and the target oracle (a self-explaining model trained on the
target itself with the variant called ``oracle_recipe``).

    python experiments/transfer.py experiments/transfer/4x4.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from explainvec.evaluation.baselines import get_attributor
from explainvec.evaluation.evaluate import evaluate_checkpoint, suite_batch
from explainvec.evaluation.suite import Method, SuiteConfig, evaluate_methods
from explainvec.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from explainvec.models.self_explaining import SelfExplainingViT, readout_of
from explainvec.training.base_cache import cached_base
from explainvec.training.config import TrainConfig
from explainvec.training.explain import train_explainer
from explainvec.training.finetune import finetune
from explainvec.training.pretrain import PRETRAIN_CONFIG
from explainvec.transfer import apply_vector
from explainvec.vectors import ExplainabilityVector


class Variant(BaseModel):
    """One way of making τ."""

    model_config = ConfigDict(extra="forbid")

    name: str
    recipe: Literal["difference", "shared"] = "difference"
    """``difference``: τ = SEM − predict per source, summed; ``shared``: one τ trained on all sources."""
    sources: list[str] = ["synthetic:geo"]
    adapter: bool = False
    """Add the class-agnostic explanation adapter (its parameters travel in τ)."""
    backbone: bool = True
    """``shared`` recipe: train τ on the backbone too (else the adapter alone)."""
    supervision: Literal["amortised", "logit", "embedding"] = "embedding"
    alpha: float = 0.05
    coalitions: int = 16
    init: Literal["value", "base"] = "value"
    freeze_head: bool = True
    lr: float = 3e-4
    epochs: int = 4
    keep_min: float = 1.0
    blocks: list[str] | None = None
    """Keep τ only on these groups (``blocks.3``, ``norm`` …); all when omitted."""


class Study(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grid: Literal["4x4", "7x7"]
    target: str = "synthetic:glyphs"
    predict_epochs: int = 4
    predict_lr: float = 5e-4
    train_size: int = 2000
    eval_size: int = 500
    base_keep_min: float = 0.5
    predict_keep_min: float = 0.5
    fidelity_images: int = 64
    reference_budget: int = 2048
    oracle_recipe: str | None = None
    variants: list[Variant]


def cache_path(runs: Path, key: dict, prefix: str = "") -> Path:
    """Where the result of configuration ``key`` is kept (a hash of its JSON)."""
    return (
        runs
        / f"{prefix}{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]}.safetensors"
    )


def cached(runs: Path, key: dict, make) -> Checkpoint:
    path = cache_path(runs, key)
    if path.is_file():
        return load_checkpoint(path)
    checkpoint = make()
    save_checkpoint(path, checkpoint)
    return checkpoint


def measure(
    study: Study, checkpoint: Checkpoint, reference: Checkpoint, readout: str, attributor="single_pass"
):
    """Accuracy and agreement on the whole test split; the suite's metrics (with intervals) on its first
    ``fidelity_images`` images."""
    row = evaluate_checkpoint(checkpoint, study.target, reference=reference, size=study.eval_size)
    sem = SelfExplainingViT(checkpoint.model, checkpoint.meta.class_names, readout).eval()
    batch = suite_batch(checkpoint, study.target, study.fidelity_images, None, reference)
    method = Method("m", sem, get_attributor(attributor), 1)
    (result,), _ = evaluate_methods([method], batch, SuiteConfig(reference_budget=study.reference_budget))
    means = {name: summary["mean"] for name, summary in result.metrics.items()}
    return {
        "accuracy": row.accuracy,
        "agreement": row.agreement,
        "insertion_auc": means["insertion_auc"],
        "deletion_auc": means["deletion_auc"],
        "shapley_pearson": means["pearson"],
        "metrics": result.metrics,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("study", type=Path)
    parser.add_argument("--runs", type=Path, default=Path("runs/transfer"))
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--table", action="store_true", help="only print the table of finished runs")
    args = parser.parse_args()
    study = Study.model_validate_json(args.study.read_text())
    runs = args.runs
    runs.mkdir(parents=True, exist_ok=True)
    results_path = runs / f"{args.study.stem}.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    if args.table:
        print(table(results, results.get("oracle")))
        return

    base_config = PRETRAIN_CONFIG.model_copy(update={"keep_min": study.base_keep_min})
    base = load_checkpoint(cached_base(study.grid, base_config))
    fp = base.meta.base_fingerprint
    predict_config = TrainConfig(
        epochs=study.predict_epochs,
        lr=study.predict_lr,
        keep_min=study.predict_keep_min,
        train_size=study.train_size,
        eval_size=study.eval_size,
    )

    def predict_model(data: str) -> Checkpoint:
        key = {"base": fp, "data": data, "config": predict_config.model_dump()}
        return cached(runs, key, lambda: finetune(base, data, predict_config))

    def explain_model(variant: Variant, data: str) -> Checkpoint:
        value = predict_model(data)
        config = predict_config.model_copy(
            update={
                "lr": variant.lr,
                "epochs": variant.epochs,
                "keep_min": variant.keep_min,
                "freeze_head": variant.freeze_head,
            }
        )
        recipe = variant.model_dump(exclude={"name", "sources", "blocks", "recipe", "adapter", "backbone"})
        recipe |= {"adapter": True} if variant.adapter else {}
        key = {"base": fp, "data": data, "value": value.meta.training.dump(), "recipe": recipe}
        return cached(
            runs,
            key,
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
            ),
        )

    def shared_vector(variant: Variant) -> ExplainabilityVector:
        from explainvec.vectors import train_shared_vector

        predicts = [predict_model(source) for source in variant.sources]
        key = {
            "base": fp,
            "shared": variant.model_dump(exclude={"name", "blocks"}),
            "predict": predict_config.model_dump(),
        }
        path = cache_path(runs, key, "tau-")
        if path.is_file():
            return ExplainabilityVector.load(path)
        config = predict_config.model_copy(
            update={"lr": variant.lr, "epochs": variant.epochs, "keep_min": 1.0}
        )
        tau = train_shared_vector(
            base,
            predicts,
            config,
            alpha=variant.alpha,
            num_coalitions=variant.coalitions,
            adapter=variant.adapter,
            backbone=variant.backbone,
        )
        tau.save(path)
        return tau

    target = predict_model(study.target)
    if "lambda0" not in results:
        results["lambda0"] = measure(study, target, target, "logit")
        results["kernelshap150"] = measure(study, target, target, "logit", "kernelshap150")
    val_images = target.split_images(study.target, "val", 128)
    variants = {v.name: v for v in study.variants}
    if study.oracle_recipe and "oracle" not in results:
        oracle = explain_model(variants[study.oracle_recipe], study.target)
        results["oracle"] = measure(study, oracle, target, readout_of(oracle))
    for variant in study.variants:
        if (args.only and variant.name not in args.only) or (not args.only and variant.name in results):
            continue
        start = time.perf_counter()
        if variant.recipe == "shared":
            tau, source_rows = shared_vector(variant), []
        else:
            taus, source_rows = [], []
            for source in variant.sources:
                sem, predict = explain_model(variant, source), predict_model(source)
                taus.append(ExplainabilityVector.from_checkpoints(sem, predict))
                source_rows.append(sem.meta.metrics["val_accuracy"])
            tau = sum(taus)
        if variant.blocks is not None:
            tau = ExplainabilityVector(
                {k: v for k, v in tau.tensors.items() if any(k.startswith(b + ".") for b in variant.blocks)},
                tau.meta,
            )
        edited = apply_vector(target, tau, "auto", data=val_images)
        row = measure(study, edited, target, readout_of(edited))
        results[variant.name] = {
            **row,
            "lambda": edited.meta.explanation.lam,
            "tau_norm": tau.norm(),
            "source_val_accuracy": source_rows,
            "curve": edited.meta.explanation.lambda_curve,
            "seconds": time.perf_counter() - start,
        }
        print(variant.name, {k: v for k, v in results[variant.name].items() if k != "curve"}, flush=True)
        results_path.write_text(json.dumps(results, indent=1))
    results_path.write_text(json.dumps(results, indent=1))
    print(table(results, results.get("oracle")))


def interval(row: dict, metric: str) -> str:
    summary = row.get("metrics", {}).get(metric)
    return f" ± {(summary['high'] - summary['low']) / 2:.2f}" if summary else ""


def table(results: dict, oracle: dict | None) -> str:
    lines = [
        "| variant | λ | accuracy | agreement | Pearson | insertion | deletion | ins − del |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        gap = r["insertion_auc"] - r["deletion_auc"]
        share = f" ({gap / (oracle['insertion_auc'] - oracle['deletion_auc']):.0%})" if oracle else ""
        lines.append(
            f"| {name} | {r.get('lambda', '—')} | {r['accuracy']:.3f} | {r['agreement']:.3f} | "
            f"{r['shapley_pearson']:.3f}{interval(r, 'pearson')} | {r['insertion_auc']:.3f} | "
            f"{r['deletion_auc']:.3f} | "
            f"{gap:.3f}{share} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
