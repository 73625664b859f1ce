"""The performance goals as side-by-side ratios, on one device, in one run.

    python benchmarks/run.py [--device cpu|cuda] [--shapes 4x4 7x7 vit_s16_224] [--out docs/benchmarks.md]

Each case runs in a fresh process (so its peak memory is its own): warm-up, then ``--repeats`` timings
of each side on the same batch; ratios use the median (min in brackets).

- P1 explain-and-predict throughput ÷ predict-only throughput (goal ≥ 0.97)
- P2 Kernel SHAP-150 time per image ÷ single-pass time per image (goal ≥ 100)
- P3 masked-evaluation throughput (mixed coalitions per image) ÷ plain forward throughput (goal ≥ 0.9)
- P4 explanation-supervised training step with K coalitions ÷ plain training step (goal ≤ 1 + 0.1 K)
- memory: peak RSS (CPU) or peak allocated (GPU) of each case, at two batch sizes
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import time
from pathlib import Path

SHAPES = {
    "4x4": {"img_size": 32, "patch_size": 8, "embed_dim": 96, "depth": 4, "num_heads": 3, "num_classes": 10},
    "7x7": {"img_size": 56, "patch_size": 8, "embed_dim": 96, "depth": 4, "num_heads": 3, "num_classes": 10},
    "vit_s16_224": {
        "img_size": 224,
        "patch_size": 16,
        "embed_dim": 384,
        "depth": 12,
        "num_heads": 6,
        "num_classes": 1000,
    },
}
BATCH = {"4x4": (64, 256), "7x7": (64, 256), "vit_s16_224": (8, 32)}


def timed(fn, repeats: int, device: str) -> list[float]:
    import torch

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def peak_memory(device: str) -> float:
    """MiB: peak allocated on the GPU, else the process's peak resident set (VmHWM)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def case(name: str, shape: str, batch: int, device: str, repeats: int, k: int = 0) -> dict:
    """One benchmark case in this process: times of both sides and the peak memory."""
    import torch

    from explainvec.models.masking import masked_tokens
    from explainvec.models.self_explaining import SelfExplainingViT
    from explainvec.models.vit import build_vit, num_patches
    from explainvec.shapley import kernel_shap
    from explainvec.shapley.model_games import MaskedModelGame
    from explainvec.shapley.sampling import sample_kernel_coalitions
    from explainvec.training.supervision import AmortisedGameLoss

    torch.manual_seed(0)
    torch.set_grad_enabled(name == "P4")
    architecture = SHAPES[shape]
    vit = build_vit(architecture).to(device)
    size, p = architecture["img_size"], num_patches(vit)
    images = torch.randn(batch, 3, size, size, device=device)
    sem = SelfExplainingViT(vit.eval(), [str(c) for c in range(architecture["num_classes"])], "logit")
    if name == "P1":
        sides = (lambda: sem(images), lambda: vit(images))
    elif name == "P2":
        sides = (
            lambda: kernel_shap(
                MaskedModelGame(vit, images, "logit"), 150, generator=torch.Generator().manual_seed(0)
            ),
            lambda: sem(images),
        )
    elif name == "P3":
        coalitions = 16
        count = max(1, batch // coalitions)
        masks = sample_kernel_coalitions(count, p, coalitions, generator=torch.Generator().manual_seed(0))
        game = MaskedModelGame(vit, images[:count], "logit")
        plain = torch.randn(count * coalitions, 3, size, size, device=device)
        sides = (lambda: game(masks), lambda: vit(plain))
    else:  # P4
        vit.train()
        labels = torch.randint(architecture["num_classes"], (batch,), device=device)
        optimizer = torch.optim.AdamW(vit.parameters(), lr=1e-5)
        loss_fn = AmortisedGameLoss(build_vit(architecture).to(device), output="embedding", num_coalitions=k)
        indices = torch.arange(batch)

        def step(explain: bool):
            tokens = masked_tokens(vit, images)
            loss = torch.nn.functional.cross_entropy(vit.forward_head(tokens), labels)
            if explain:
                loss = loss + loss_fn(vit, images, indices, tokens)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        sides = (lambda: step(True), lambda: step(False))
    with torch.inference_mode(name != "P4"):
        first, second = (timed(side, repeats, device) for side in sides)
    return {"first": first, "second": second, "peak_mib": peak_memory(device)}


def run_case(*args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(case, args)


GOALS = {
    "P1": ("explain+predict ÷ predict throughput", lambda a, b: b / a, "≥ 0.97"),
    "P2": ("Kernel SHAP-150 ÷ single pass, time per image", lambda a, b: a / b, "≥ 100"),
    "P3": ("masked evaluation ÷ plain forward throughput", lambda a, b: b / a, "≥ 0.9"),
    "P4": ("supervised step (K) ÷ plain step", lambda a, b: a / b, "≤ 1 + 0.1 K"),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args()

    rows = []
    for shape in args.shapes:
        small, large = BATCH[shape]
        plan = [("P1", 0), ("P2", 0), ("P3", 0)] + [("P4", k) for k in (8, 16, 32)]
        for name, k in plan:
            batch = small if name in ("P2", "P4") else large
            if name == "P2":
                batch = max(2, batch // 8)
            result = run_case(name, shape, batch, args.device, args.repeats, k)
            what, ratio, goal = GOALS[name]
            medians = statistics.median(result["first"]), statistics.median(result["second"])
            best = min(result["first"]), min(result["second"])
            memory = [result["peak_mib"]]
            if name in ("P1", "P3"):  # how memory grows with the batch
                memory.append(run_case(name, shape, batch // 4, args.device, 1, k)["peak_mib"])
            row = {
                "shape": shape,
                "case": name + (f" K={k}" if k else ""),
                "what": what,
                "batch": batch,
                "ratio": ratio(*medians),
                "ratio_min": ratio(*best),
                "goal": f"≤ {1 + 0.1 * k:g}" if k else goal,
                "first_ms": 1000 * medians[0],
                "second_ms": 1000 * medians[1],
                "peak_mib": memory,
            }
            rows.append(row)
            print(row, flush=True)
    table = markdown(rows, args.device)
    print(table)
    if args.out:
        args.out.write_text(table)


def markdown(rows: list[dict], device: str) -> str:
    import torch

    lines = [
        f"Device: {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}).",
        "",
        "| shape | case | measures | batch | ratio (median) | ratio (best) | goal | median ms A / B "
        "| peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        memory = " / ".join(f"{m:.0f}" for m in r["peak_mib"])
        lines.append(
            f"| {r['shape']} | {r['case']} | {r['what']} | {r['batch']} | {r['ratio']:.3f} | "
            f"{r['ratio_min']:.3f} | "
            f"{r['goal']} | {r['first_ms']:.1f} / {r['second_ms']:.1f} | {memory} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
