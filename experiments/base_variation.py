"""How much the λ = 0 map and τ's effect depend on the base: the quick demo's recipe on one base.

    python experiments/base_variation.py --base-seed 1 [--finetune-seeds 0 1 2] [--base FILE]

Pretrains the 4x4 base with ``--base-seed`` (or loads ``--base``), fine-tunes the source prediction
model, the source self-explaining model (init from the base) and the target prediction model with each
fine-tune seed, and prints insertion − deletion and agreement at λ = 0, 0.25, 0.5 and 1 on the 128
unlabelled target val images the λ search uses. To run it with the code of another commit:
``git worktree add /tmp/old COMMIT`` and ``PYTHONPATH=/tmp/old/src python experiments/base_variation.py``.
"""

from __future__ import annotations

import argparse

from explainvec.demo import DEMO_PRESETS
from explainvec.models.checkpoint import load_checkpoint
from explainvec.models.self_explaining import readout_of
from explainvec.training.explain import train_explainer
from explainvec.training.finetune import finetune
from explainvec.training.pretrain import PRETRAIN_CONFIG, pretrain
from explainvec.transfer import choose_lambda, lambda_curve
from explainvec.vectors import ExplainabilityVector


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-seed", type=int, default=0)
    parser.add_argument("--base", help="a base checkpoint instead of pretraining one")
    parser.add_argument("--finetune-seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    preset = DEMO_PRESETS["quick"]
    if args.base:
        base = load_checkpoint(args.base)
    else:
        base = pretrain(preset.grid, PRETRAIN_CONFIG.model_copy(update={"seed": args.base_seed}))
    print(f"base val accuracy {base.meta.metrics['val_accuracy']:.3f}")
    for seed in args.finetune_seeds:
        config, explain_config = preset.configs(seed=seed)
        source_predict = finetune(base, preset.source, config)
        source_explain = train_explainer(base, source_predict, preset.source, explain_config)
        target = finetune(base, preset.target, config)
        tau = ExplainabilityVector.from_checkpoints(source_explain, source_predict)
        images = target.split_images(preset.target, "val", 128)
        readout = readout_of(source_explain)
        curve = lambda_curve(target.model, tau, images, readout=readout, grid=(0.0, 0.25, 0.5, 1.0))
        points = " ".join(f"λ {p.lam}: ins−del {p.score:.3f} agreement {p.agreement:.3f} |" for p in curve)
        print(f"fine-tune seed {seed}: {points} chosen λ {choose_lambda(curve).lam}", flush=True)


if __name__ == "__main__":
    main()
