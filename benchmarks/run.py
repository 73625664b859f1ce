"""The performance goals as side-by-side ratios, on one device, in one run; and how memory grows.

    python benchmarks/run.py [--device cpu|cuda] [--shapes 4x4 7x7 vit_s16_224] [--cases P1 P2 P3 P4 lam-auto]
                             [--repeats 5] [--threads N] [--tables timing memory] [--out FILE]

Timing: each case runs in a fresh process; every side is warmed up once, then timed ``--repeats`` times,
the sides interleaved (so load from other processes hits them alike). Ratios use the medians (and the
best times). P2, P3 and P4 time the masked value model both ways: complementary coalition pairs packed
into one sequence (the default) and one sequence per coalition (``pack_pairs=False``, as before packing).

- P1 explain-and-predict throughput ÷ predict-only throughput (goal ≥ 0.97)
- P2 Kernel SHAP-150 time per image ÷ single-pass time per image (goal ≥ 100)
- P3 masked-evaluation throughput (mixed coalitions per image) ÷ plain forward throughput (goal ≥ 0.9)
- P4 explanation-supervised training step with K coalitions ÷ plain training step (goal ≤ 1 + 0.1 K); and
  the same with the other supervision mode, regression on cached Kernel SHAP labels (P4-labels)
- P4-bank: the whole self-explaining fine-tune per item (``EPOCHS`` explain steps on one batch, the coalition
  bank filled in the first, K = 16) ÷ the prediction fine-tune per item (``EPOCHS`` steps with patch
  dropping, as ``train --mode predict``) (goal ≤ 2); P4-fresh: the same with fresh coalitions every step
- lam-auto: the λ search of ``apply --lam auto`` (default grid, 8 λ; and 32 λ) ÷ one insertion − deletion
  evaluation of the unedited model on the same images (goal ≤ 10), by the default criterion
  (``shapley_fit``) and, at 16 patches, by the old one (``insertion_deletion``), interleaved in one process
- explain: ``explain`` over a folder of images streamed by ``explain_to_folder`` (loader with 2 workers,
  batched single passes, maps into ``attributions.npy``) with ``--overlays none`` (``explain``) and with
  top-1 overlays drawn by 2 worker processes (``explain-top1``) ÷ a plain batched prediction pass over the
  same folder with the same loader, images per second (goals ≥ 0.8 and ≥ 0.3)

Memory: every side alone in a fresh process, warmed up, then run once; the peak (VmHWM on CPU, with
glibc returning freed blocks; peak allocated on the GPU) and its growth over the process before the
run, at batch 8/32/64 on the 7x7 grid and at 16/49/196 patches (same width and depth) with batch 32.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

PRESET = {"patch_size": 8, "embed_dim": 96, "depth": 4, "num_heads": 3, "num_classes": 10}
SHAPES = {
    "4x4": {"img_size": 32, **PRESET},
    "7x7": {"img_size": 56, **PRESET},
    "14x14": {"img_size": 112, **PRESET},
    "vit_s16_224": {
        "img_size": 224,
        "patch_size": 16,
        "embed_dim": 384,
        "depth": 12,
        "num_heads": 6,
        "num_classes": 1000,
    },
}
"""4x4 and 7x7 are the package's presets; 14x14 (196 patches) only serves the memory table."""
BATCH = {
    "4x4": {"P1": 256, "P2": 64, "P3": 256, "P4": 64},
    "7x7": {"P1": 256, "P2": 64, "P3": 256, "P4": 64},
    "vit_s16_224": {"P1": 32, "P2": 2, "P3": 32, "P4": 8, "lam-auto": 4},
}
for _shape in ("4x4", "7x7"):
    BATCH[_shape]["lam-auto"] = 128  # apply's LAMBDA_IMAGES
"""Images per batch of each case. P2's single pass needs a batch that keeps the device busy (at 8 images
the 4x4 and 7x7 forwards ran at a third of their per-image speed at 64); ViT-S is busy at 2 already, and
Kernel SHAP-150 of 8 ViT-S images would take minutes per repeat."""
CASES = ["P1", "P2", "P3", "P4", "explain", "lam-auto"]
FOLDER_BATCHES = 8
"""explain / explain-top1: the folder holds this many batches of JPEGs at twice the model's input size
(resized by its transform, as a user's photos would be)."""
for _shape, _batch in {"4x4": 64, "7x7": 64, "vit_s16_224": 8}.items():
    BATCH[_shape] |= {"explain": _batch, "explain-top1": _batch}
KS = (8, 16, 32)
EPOCHS = 4
"""P4-bank / P4-fresh: epochs of a fine-tune (``train``'s default), as steps over one batch."""
BANK_K = 16
MEMORY_SETTINGS = [("7x7", 8), ("7x7", 32), ("7x7", 64), ("4x4", 32), ("14x14", 32)]
MEMORY_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024)}
"""glibc hands every freed block over 64 KiB back to the system, so the resident set follows live memory
(otherwise a warm-up's freed buffers stay resident and hide the next run's growth)."""
MEMORY_SIDES = [
    "predict",
    "explain+predict",
    "Kernel SHAP-150",
    "Kernel SHAP-150 unpacked",
    "masked eval ×16",
    "masked eval ×16 unpacked",
    "plain step",
    "step K=8",
    "step K=16",
    "step K=32",
    "step K=32 unpacked",
]


def sides(case: str, shape: str, batch: int, device: str, k: int = 0) -> dict[str, Callable[[], object]]:
    """The callables a case compares, on one random model and batch: ``A`` (and ``A unpacked``) vs ``B``.

    ``case`` is P1..P4, or ``memory:<side>`` for one side of the memory table (B images each).
    """
    if case.startswith("explain"):
        return explain_folder_sides(case, shape, batch, device)
    import copy

    import torch

    from explainvec.models.adapter import add_adapter
    from explainvec.models.masking import masked_tokens
    from explainvec.models.self_explaining import SelfExplainingViT
    from explainvec.models.vit import build_vit, num_patches
    from explainvec.shapley import kernel_shap
    from explainvec.shapley.model_games import MaskedModelGame
    from explainvec.shapley.sampling import sample_kernel_coalitions
    from explainvec.training.patch_drop import random_keep_masks
    from explainvec.training.supervision import AmortisedGameLoss, LabelRegressionLoss

    torch.manual_seed(0)
    architecture = SHAPES[shape]
    vit = build_vit(architecture).to(device).eval()
    size, p = architecture["img_size"], num_patches(vit)
    images = torch.randn(batch, 3, size, size, device=device)
    sem = SelfExplainingViT(vit, [str(c) for c in range(architecture["num_classes"])], "logit")

    def shap(pack: bool):
        game = MaskedModelGame(vit, images, "logit", pack_pairs=pack)
        return lambda: kernel_shap(game, 150, generator=torch.Generator().manual_seed(0))

    def masked(count: int, pack: bool):
        masks = sample_kernel_coalitions(count, p, 16, generator=torch.Generator().manual_seed(0))
        game = MaskedModelGame(vit, images[:count], "logit", pack_pairs=pack)
        return lambda: game(masks)

    def game_loss(coalitions: int, pack: bool, bank: bool = False) -> AmortisedGameLoss:
        value_model = build_vit(architecture).to(device)
        return AmortisedGameLoss(
            value_model, output="embedding", num_coalitions=coalitions, pack_pairs=pack, bank=bank
        )

    def training(extra_loss=None, keep_min: float = 1.0):
        """A training step: cross-entropy (with patch dropping if ``keep_min`` < 1, as the prediction
        fine-tune), plus ``extra_loss`` (explanation supervision) if given. Its argument: the epoch."""
        vit.train()
        labels = torch.randint(architecture["num_classes"], (batch,), device=device)
        optimizer = torch.optim.AdamW(vit.parameters(), lr=1e-5)
        indices = torch.arange(batch)
        generator = torch.Generator().manual_seed(0)

        def step(epoch: int = 0):
            keep = None
            if keep_min < 1:
                keep = random_keep_masks(batch, p, keep_min, generator).to(device)
            tokens = masked_tokens(vit, images, keep)
            loss = torch.nn.functional.cross_entropy(vit.forward_head(tokens), labels)
            if extra_loss is not None:
                loss = loss + extra_loss(vit, images, indices, tokens, epoch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return step

    def fine_tune(step, loss: AmortisedGameLoss | None = None):
        """``EPOCHS`` steps on the batch, as a fine-tune sees each item; a bank starts empty each time."""

        def run():
            if loss is not None and loss.bank is not None:
                loss.bank.clear()
            for epoch in range(EPOCHS):
                step(epoch)

        return run

    if case.startswith("memory:"):
        side = case.removeprefix("memory:")
        pack = not side.endswith(" unpacked")
        side = side.removesuffix(" unpacked")
        if side == "plain step":
            return {"run": training()}
        if side.startswith("step K="):
            return {"run": training(game_loss(int(side.removeprefix("step K=")), pack))}
        if side.startswith("Kernel SHAP"):
            return {"run": shap(pack)}
        if side.startswith("masked eval"):
            return {"run": masked(batch, pack)}
        return {"run": {"predict": lambda: vit(images), "explain+predict": lambda: sem(images)}[side]}
    if case == "P1":
        return {"A": lambda: sem(images), "B": lambda: vit(images)}
    if case in ADAPTER_CASES:
        adapted = add_adapter(copy.deepcopy(vit), case.removeprefix("P1-")).eval()
        explainer = SelfExplainingViT(adapted, sem.class_names, "logit")
        return {"A": lambda: explainer(images), "B": lambda: vit(images)}
    if case == "P2":
        return {"A": shap(True), "A unpacked": shap(False), "B": lambda: sem(images)}
    if case == "P3":
        count = max(1, batch // 16)
        plain = torch.randn(count * 16, 3, size, size, device=device)
        return {"A": masked(count, True), "A unpacked": masked(count, False), "B": lambda: vit(plain)}
    if case == "lam-auto":
        return lambda_search_sides(vit, architecture, images)
    if case in ("P4-bank", "P4-fresh"):
        bank = case == "P4-bank"
        losses = {"A": game_loss(k, True, bank), "A unpacked": game_loss(k, False, bank)}
        predict = fine_tune(training(keep_min=0.5))
        return {side: fine_tune(training(loss), loss) for side, loss in losses.items()} | {"B": predict}
    if case == "P4-labels":
        cached = torch.randn(batch, p, architecture["num_classes"], device=device)
        return {"A": training(LabelRegressionLoss(cached)), "B": training()}
    return {"A": training(game_loss(k, True)), "A unpacked": training(game_loss(k, False)), "B": training()}


def lambda_search_sides(vit, architecture: dict, images) -> dict[str, Callable[[], object]]:
    """``apply --lam auto``'s search (``A``: the default criterion on the default grid; ``A:…``: 32 λ, and
    at 16 patches the old criterion, about 8 × B, too slow to repeat at more) and ``B``: one insertion −
    deletion evaluation of the unedited model's map."""
    import copy

    import torch

    from explainvec.data import Preprocess
    from explainvec.evaluation.metrics import insertion_deletion_auc
    from explainvec.models.checkpoint import Checkpoint, CheckpointMeta
    from explainvec.models.self_explaining import SelfExplainingViT
    from explainvec.models.vit import num_patches
    from explainvec.shapley.model_games import MaskedModelGame
    from explainvec.transfer import DEFAULT_GRID, lambda_curve
    from explainvec.vectors import ExplainabilityVector

    meta = CheckpointMeta(
        kind="predict",
        architecture=architecture,
        class_names=[str(c) for c in range(architecture["num_classes"])],
        preprocess=Preprocess(image_size=architecture["img_size"]),
        base_fingerprint="benchmark",
    )
    explain = copy.deepcopy(vit)
    with torch.no_grad():
        for p in explain.parameters():
            p.add_(0.01 * torch.randn_like(p))
    tau = ExplainabilityVector.from_checkpoints(Checkpoint(explain, meta), Checkpoint(vit, meta))
    sem = SelfExplainingViT(vit, meta.class_names, "logit")
    fine = tuple(2 * i / 31 for i in range(32))

    def insertion_deletion():
        out = sem(images)
        return insertion_deletion_auc(MaskedModelGame(vit, images), out.for_class(), out.predicted)

    sides = {
        "A": lambda: lambda_curve(vit, tau, images, readout="logit", grid=DEFAULT_GRID),
        "A:shapley_fit, 32 λ": lambda: lambda_curve(vit, tau, images, readout="logit", grid=fine),
        "B": insertion_deletion,
    }
    if num_patches(vit) <= 16:
        sides["A:insertion_deletion, 8 λ"] = lambda: lambda_curve(
            vit, tau, images, readout="logit", grid=DEFAULT_GRID, criterion="insertion_deletion"
        )
    return sides


def explain_folder_sides(case: str, shape: str, batch: int, device: str) -> dict[str, Callable[[], object]]:
    """``A``: ``explain_to_folder`` over a folder of JPEGs (no overlays, or top-1 overlays for
    ``explain-top1``), writing into the same folder each time; ``B``: the plain model over the same folder,
    same loader (listing, decoding and preprocessing in 2 worker processes, same batches)."""
    import atexit
    import shutil
    import tempfile

    import numpy as np
    import torch
    from PIL import Image

    from explainvec.data.preprocess import Preprocess
    from explainvec.evaluation.explain_files import explain_loader, explain_to_folder, image_items
    from explainvec.models.checkpoint import Checkpoint, CheckpointMeta
    from explainvec.models.self_explaining import SelfExplainingViT
    from explainvec.models.vit import build_vit

    torch.manual_seed(0)
    architecture = SHAPES[shape]
    vit = build_vit(architecture).to(device).eval()
    size, count = architecture["img_size"], FOLDER_BATCHES * batch
    folder = Path(tempfile.mkdtemp(prefix="explainvec-bench-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        (folder / "images" / f"c{i % 4}").mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        photo = coarse.resize((2 * size, 2 * size), Image.Resampling.BICUBIC)
        photo.save(folder / "images" / f"c{i % 4}" / f"{i}.jpg", quality=90)
    classes = [str(c) for c in range(architecture["num_classes"])]
    meta = CheckpointMeta(
        kind="predict",
        architecture=architecture,
        class_names=classes,
        preprocess=Preprocess(image_size=size),
        base_fingerprint="benchmark",
    )
    checkpoint, sem = Checkpoint(vit, meta), SelfExplainingViT(vit, classes, "logit")
    overlays = "top1" if case == "explain-top1" else "none"

    def explain():
        inputs = image_items(checkpoint, [folder / "images"])
        explain_to_folder(sem, meta.preprocess, inputs, folder / "out", overlays=overlays, batch_size=batch,
                          workers=2, device=device)  # fmt: skip

    def predict():
        inputs = image_items(checkpoint, [folder / "images"])
        for _, images, _ in explain_loader(inputs, batch_size=batch, workers=2):
            vit(images.to(device)).cpu()

    return {"A": explain, "B": predict}


def synchronise(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timing_case(
    case: str, shape: str, batch: int, device: str, repeats: int, k: int, threads: int | None
) -> dict:
    """Times of every side of one case in this process: warm-up, then ``repeats`` interleaved rounds."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    fns = sides(case, shape, batch, device, k)
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.inference_mode(not case.startswith("P4")):
        for fn in fns.values():
            fn()
        synchronise(device)
        names = list(fns)
        for round_ in range(repeats):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                start = time.perf_counter()
                fns[name]()
                synchronise(device)
                times[name].append(time.perf_counter() - start)
    return times


def resident_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_case(side: str, shape: str, batch: int, device: str, threads: int | None) -> dict:
    """Peak memory (MiB) of one side in this fresh process, run once after a warm-up run, and its growth
    over the state before the run (model, inputs, the Python process and torch)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    fn = sides("memory:" + side, shape, batch, device)["run"]
    gpu = device.startswith("cuda")
    with torch.inference_mode("step" not in side):
        fn()
        synchronise(device)
        if gpu:
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated() / 2**20
        else:
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
            before = resident_mib("VmRSS")
        fn()
        synchronise(device)
    peak = torch.cuda.max_memory_allocated() / 2**20 if gpu else resident_mib("VmHWM")
    return {"peak": peak, "growth": peak - before}


def in_fresh_process(fn, *args):
    """``fn(*args)`` in a fresh process; not a daemon, so a case may start processes of its own (loaders)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


ADAPTER_CASES = ("P1-contributions", "P1-stream", "P1-two-hop", "P1-two-hop-mlp")
"""P1 with each kind of explanation adapter (the case name after ``P1-``)."""

GOALS = {
    "P1": ("explain+predict ÷ predict throughput", lambda a, b: b / a, "≥ 0.97"),
    **{
        case: (
            f"explain+predict with the {case.removeprefix('P1-')} adapter ÷ predict",
            lambda a, b: b / a,
            "—",
        )
        for case in ADAPTER_CASES
    },
    "P2": ("Kernel SHAP-150 ÷ single pass, time per image", lambda a, b: a / b, "≥ 100"),
    "P3": ("masked evaluation ÷ plain forward throughput", lambda a, b: b / a, "≥ 0.9"),
    "P4": ("supervised step (K) ÷ plain step", lambda a, b: a / b, "≤ 1 + 0.1 K"),
    "P4-labels": ("step on cached Kernel SHAP labels ÷ plain step", lambda a, b: a / b, "—"),
    "explain": ("explain a folder, no overlays ÷ predict, images/s", lambda a, b: b / a, "≥ 0.8"),
    "explain-top1": ("explain a folder, top-1 overlays ÷ predict, images/s", lambda a, b: b / a, "≥ 0.3"),
    "P4-bank": ("explain fine-tune, coalition bank ÷ predict fine-tune", lambda a, b: a / b, "≤ 2"),
    "P4-fresh": ("explain fine-tune, fresh coalitions ÷ predict fine-tune", lambda a, b: a / b, "—"),
    "lam-auto": ("λ search (shapley_fit, 8 λ) ÷ one insertion − deletion", lambda a, b: a / b, "≤ 10"),
}
"""P4-labels is the other supervision mode: its coalitions are paid once per image (``explainvec labels``)."""


def timing_rows(
    shapes: list[str], cases: list[str], device: str, repeats: int, threads: int | None
) -> list[dict]:
    rows = []
    for shape in shapes:
        plan = [(name, 0) for name in ("P1", "P2", "P3") if name in cases]
        if "P1" in cases:
            plan[1:1] = [(case, 0) for case in ADAPTER_CASES]
        if "explain" in cases:
            plan += [("explain", 0), ("explain-top1", 0)]
        if "P4" in cases:
            plan += [("P4", k) for k in KS] + [("P4-labels", 0)]
        if "P4" in cases or "P4-bank" in cases:
            plan += [("P4-bank", BANK_K), ("P4-fresh", BANK_K)]
        if "lam-auto" in cases:
            plan.append(("lam-auto", 0))
        for name, k in plan:
            batch = BATCH[shape][name.split("-")[0] if name.startswith(("P4", "P1")) else name]
            times = in_fresh_process(timing_case, name, shape, batch, device, repeats, k, threads)
            what, ratio, goal = GOALS[name]
            median = {side: statistics.median(t) for side, t in times.items()}
            best = {side: min(t) for side, t in times.items()}
            row = {
                "shape": shape,
                "case": name + (f" K={k}" if k else ""),
                "what": what,
                "batch": batch,
                "goal": f"≤ {1 + 0.1 * k:g}" if name == "P4" else goal,
                "ratio": (ratio(median["A"], median["B"]), ratio(best["A"], best["B"])),
                "ms": {side: 1000 * t for side, t in median.items()},
            }
            if "A unpacked" in times:
                row["unpacked"] = (
                    ratio(median["A unpacked"], median["B"]),
                    ratio(best["A unpacked"], best["B"]),
                )
                row["speedup"] = (median["A unpacked"] / median["A"], best["A unpacked"] / best["A"])
            rows.append(row)
            print(row, flush=True)
            for side in (s for s in times if s.startswith("A:")):  # other A sides, same B, same rounds
                variant = side.removeprefix("A:")
                measures = f"λ search ({variant}) ÷ one insertion − deletion"
                other = {**row, "case": f"{row['case']} ({variant})", "what": measures}
                other["ratio"] = (ratio(median[side], median["B"]), ratio(best[side], best["B"]))
                other["ms"] = {"A": 1000 * median[side], "B": row["ms"]["B"]}
                rows.append(other)
                print(other, flush=True)
    return rows


def memory_rows(device: str, threads: int | None) -> list[dict]:
    os.environ.update(MEMORY_ENVIRONMENT)  # read by glibc when each fresh process starts
    rows = []
    for side in MEMORY_SIDES:
        row = {
            "side": side,
            "mib": [
                in_fresh_process(memory_case, side, *setting, device, threads) for setting in MEMORY_SETTINGS
            ],
        }
        rows.append(row)
        print(row, flush=True)
    for name in MEMORY_ENVIRONMENT:
        del os.environ[name]
    return rows


def median_best(values: tuple[float, float] | None, digits: int) -> str:
    return "—" if values is None else f"{values[0]:.{digits}f} ({values[1]:.{digits}f})"


def timing_table(rows: list[dict]) -> str:
    lines = [
        "| shape | case | measures | batch | goal | ratio, packed: median (best) "
        "| ratio, unpacked: median (best) | unpacked ÷ packed time: median (best) "
        "| median ms: A packed / A unpacked / B |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ms = r["ms"]
        unpacked_ms = f"{ms['A unpacked']:.1f}" if "A unpacked" in ms else "—"
        lines.append(
            f"| {r['shape']} | {r['case']} | {r['what']} | {r['batch']} | {r['goal']} | "
            f"{median_best(r['ratio'], 3)} | {median_best(r.get('unpacked'), 3)} | "
            f"{median_best(r.get('speedup'), 2)} | {ms['A']:.1f} / {unpacked_ms} / {ms['B']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def memory_table(rows: list[dict], device: str) -> str:
    what = "peak allocated" if device.startswith("cuda") else "peak RSS"
    header = " | ".join(
        f"P = {(SHAPES[shape]['img_size'] // SHAPES[shape]['patch_size']) ** 2}, batch {batch}"
        for shape, batch in MEMORY_SETTINGS
    )
    lines = [
        f"{what} in MiB, and (in brackets) its growth over the process before the run:",
        "",
        f"| side | {header} |",
        "|---|" + "---|" * len(MEMORY_SETTINGS),
    ]
    for r in rows:
        cells = " | ".join(f"{m['peak']:.0f} (+{m['growth']:.0f})" for m in r["mib"])
        lines.append(f"| {r['side']} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shapes", nargs="+", default=list(BATCH), choices=list(BATCH))
    parser.add_argument(
        "--cases",
        nargs="+",
        default=CASES,
        choices=[*CASES, "P4-bank"],
        help="P4 includes P4-labels, P4-bank and P4-fresh; P4-bank alone: those two",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads per case (default torch's; 1 is steadier on a shared machine)",
    )
    parser.add_argument("--tables", nargs="+", default=["timing", "memory"], choices=["timing", "memory"])
    parser.add_argument("--out", type=Path, help="also write the tables (Markdown) here")
    args = parser.parse_args()

    import torch

    threads = args.threads or torch.get_num_threads()
    parts = [
        f"Device: {args.device} ({platform.processor() or platform.machine()}, {threads} "
        f"thread{'s' if threads > 1 else ''}, torch {torch.__version__}).\n"
    ]
    if "timing" in args.tables:
        parts.append(
            timing_table(timing_rows(args.shapes, args.cases, args.device, args.repeats, args.threads))
        )
    if "memory" in args.tables:
        parts.append(memory_table(memory_rows(args.device, args.threads), args.device))
    text = "\n".join(parts)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
