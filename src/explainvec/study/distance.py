"""Transfer against fine-tuning distance: insertion − deletion of every recipe's transferred map, of
λ = 0 and of rollout, on targets fine-tuned further from the base (learning rate × epochs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from explainvec.evaluation.evaluate import PAIRED_AGAINST as FREE_ROWS
from explainvec.evaluation.evaluate import suite_batch
from explainvec.models.self_explaining import SelfExplainingViT, readout_of
from explainvec.study.measure import per_image
from explainvec.transfer import apply_vector

if TYPE_CHECKING:
    from explainvec.study.run import StudyRun


def distance_name(lr: float, epochs: int) -> str:
    return f"lr{lr:g}-e{epochs}"


def measure_distances(run: StudyRun, distances: dict, save) -> None:
    """Fill ``distances[<lr-epochs>][b<base>][row]`` with per-image insertion, deletion and their
    difference: every base, the study's first target seed, each of ``study.distances``."""
    study = run.study
    seed = study.target_seeds[0]
    task = run.progress.task("distance curve", total=len(study.bases) * len(study.distances))
    chosen = study.distance_variants
    variants = [v for v in study.variants if chosen is None or v.name in chosen]
    for base_seed in study.bases:
        base = run.base(base_seed)
        for distance in study.distances:
            rows = distances.setdefault(distance_name(distance.lr, distance.epochs), {})
            rows = rows.setdefault(f"b{base_seed}", {})
            missing = [r for r in (*FREE_ROWS, *(v.name for v in variants)) if r not in rows]
            if missing:
                target = run.predict(base, study.target, seed, lr=distance.lr, epochs=distance.epochs)
                batch = suite_batch(target, study.target, study.fidelity_images, None, target)
                model = SelfExplainingViT(target.model, target.meta.class_names, readout_of(target)).eval()
                for row in FREE_ROWS:
                    if row in missing:
                        attributor = "single_pass" if row == "lambda0" else row
                        rows[row] = per_image(model, batch, None, attributor)
                val = target.split_images(study.target, "val", study.lambda_images)
                for variant in variants:
                    if variant.name in missing:
                        tau, _ = run.tau(base, variant)
                        edited = apply_vector(target, tau, "auto", data=val, criterion=study.lambda_criterion)
                        explainer = SelfExplainingViT.from_checkpoint(edited).eval()
                        rows[variant.name] = {
                            **per_image(explainer, batch, None),
                            "lambda": edited.meta.explanation.lam,
                        }
                save()
            task.advance()
