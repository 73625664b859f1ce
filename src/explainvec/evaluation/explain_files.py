"""Explaining images into a folder, streamed: a loader with workers, batched single passes, every raw map
into one memory-mappable ``attributions.npy`` (or, for small runs, the JSON), overlay PNGs rendered in
worker processes, and ``explanations.json`` naming each image's source, prediction and overlay.

Nothing is half-written: the maps and the JSON are renamed into place when every image is done, each PNG
is written atomically, and a run that fails removes the PNGs it wrote.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from timm.data import create_transform
from torch.utils.data import DataLoader, Dataset

from explainvec.data.folder import IMAGE_SUFFIXES, open_rgb
from explainvec.data.preprocess import Preprocess
from explainvec.errors import ExplainvecError, OutputError
from explainvec.evaluation.heatmaps import compose_overlays, display_pictures, upsample
from explainvec.io import atomic_write, atomic_write_together, json_writer
from explainvec.models.checkpoint import Checkpoint
from explainvec.models.self_explaining import Explanation, SelfExplainingViT
from explainvec.progress import SILENT, Tracker
from explainvec.vocabulary import MapsFormat, Overlays

INDEX = "explanations.json"
MAPS = "attributions.npy"
Batch = tuple[torch.Tensor, torch.Tensor, list[torch.Tensor | None]]
"""What the loader gives: positions ``[B]``, images ``[B, 3, H, W]``, and each image's mask or None."""


@dataclass
class ImageItem:
    """An image already in memory: a name for its files, the model input, and an optional evidence mask."""

    name: str
    image: torch.Tensor  # [3, H, W], preprocessed
    mask: torch.Tensor | None = None


class ExplainInputs(Dataset):
    """What to explain, in order: image files (decoded and preprocessed where the loader reads them, in its
    workers), then test images of embedded data, then images already in memory. Items are
    ``(position, image, mask or None)``; ``names`` and ``paths`` (None where there is no file) are known
    without reading any image."""

    def __init__(
        self,
        files: Sequence[Path] = (),
        transform: Callable | None = None,
        split: Dataset | None = None,
        split_names: Sequence[str] = (),
        items: Sequence[ImageItem] = (),
    ) -> None:
        self.files, self.transform = list(files), transform
        self.split, self.split_names, self.items = split, list(split_names), list(items)
        self.names = (
            [f"{i:03d}-{printable(f.stem)}" for i, f in enumerate(self.files)]
            + self.split_names
            + [item.name for item in self.items]
        )
        self.paths: list[str | None] = [str(f) for f in self.files] + [None] * (
            len(self.split_names) + len(self.items)
        )

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, position: int) -> tuple[int, torch.Tensor, torch.Tensor | None]:
        if position < len(self.files):
            return position, self.transform(open_rgb(self.files[position])), None
        index = position - len(self.files)
        if index < len(self.split_names):
            image, _, mask = self.split[index]
            return position, image, mask if getattr(self.split, "has_masks", False) else None
        item = self.items[index - len(self.split_names)]
        return position, item.image, item.mask


def collate(samples: list[tuple[int, torch.Tensor, torch.Tensor | None]]) -> Batch:
    """Stack a batch of ``ExplainInputs`` items; masks stay a list (images may have one or not)."""
    positions, images, masks = zip(*samples, strict=True)
    return torch.tensor(positions), torch.stack(images), list(masks)


def explain_loader(inputs: Dataset, *, batch_size: int = 64, workers: int = 0) -> DataLoader:
    """The loader that reads ``inputs`` in order, in ``workers`` processes (0: in this one), forked where
    the platform can (a spawned worker imports torch again: seconds per run)."""
    return DataLoader(
        inputs,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate,
        prefetch_factor=4 if workers else None,
        multiprocessing_context=worker_context() if workers else None,
    )


def worker_context() -> multiprocessing.context.BaseContext:
    """How loader and overlay workers start: forked where the platform can, else spawned."""
    return multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )


def image_items(
    checkpoint: Checkpoint, inputs: list[Path], *, data: str | None = None, count: int = 8
) -> ExplainInputs:
    """What to explain: image files and every image under folders in ``inputs``, preprocessed for the
    model when read, then the first ``count`` test images of ``data`` (with their masks)."""
    if data and count < 1:
        raise ExplainvecError(f"--count must be at least 1 (got {count})")
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"image {path} does not exist")
    split, split_names = None, []
    if data:
        split = checkpoint.load_split(data, "test", size=count)
        names = split.class_names
        domain = data.split(":")[-1]
        split_names = [f"{domain}-{i:03d}-{names[split[i][1]]}" for i in range(min(count, len(split)))]
    if not files and not split_names:
        raise ValueError("nothing to explain: give image files or folders, or --data")
    transform = create_transform(**checkpoint.meta.preprocess.timm_kwargs())
    return ExplainInputs(files, transform, split, split_names)


def printable(name: str) -> str:
    """A file name as text that can be drawn and stored as JSON: bytes that are not UTF-8 (kept by Python
    as surrogates) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass
class OverlayBatch:
    """The overlay PNGs of one batch: everything they show, as a few arrays for a worker process."""

    paths: list[Path]
    images: np.ndarray  # [B, 3, H, W] model inputs
    maps: np.ndarray  # [B, K, gh, gw]: the shown classes' attributions on the patch grid
    titles: list[list[str]]
    suptitles: list[str]
    masks: list[np.ndarray | None]
    preprocess: Preprocess
    smooth: bool


def render_overlays(batch: OverlayBatch) -> list[Path]:
    """Compose and write each image's PNG (atomically); runs in an overlay worker process."""
    grid = batch.maps.shape[-2:]
    pictures = display_pictures(batch.images, batch.preprocess)
    heatmaps = upsample(batch.maps, batch.images.shape[-2:], smooth=batch.smooth)
    for path, picture, maps, titles, suptitle, mask in zip(
        batch.paths, pictures, heatmaps, batch.titles, batch.suptitles, batch.masks, strict=True
    ):
        drawn = compose_overlays(picture, maps, titles, grid=grid, suptitle=suptitle, mask=mask)
        atomic_write(path, lambda tmp, drawn=drawn: drawn.save(tmp, format="png", compress_level=1))
    return batch.paths


class InProcess(Executor):
    """An executor that runs each call at once, here (``workers=0``)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:
            future.set_exception(error)
        return future


@contextmanager
def overlay_workers(workers: int) -> Iterator[Executor]:
    """Processes that render overlays (``worker_context``: nothing to import again); on exit
    every job still queued is cancelled and every running one finished."""
    if workers < 1:
        yield InProcess()
        return
    pool = ProcessPoolExecutor(workers, mp_context=worker_context())
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@torch.no_grad()
def explain_to_folder(
    model: SelfExplainingViT,
    preprocess: Preprocess,
    inputs: ExplainInputs | Sequence[ImageItem],
    out: str | Path,
    *,
    top_k: int = 3,
    overlays: Overlays = "topk",
    maps: MapsFormat = "npy",
    batch_size: int = 64,
    workers: int = 0,
    device: str | torch.device = "cpu",
    smooth: bool = False,
    progress: Tracker = SILENT,
) -> Path:
    """Explain every input in batches of one forward pass each and write, into ``out``:

    - ``attributions.npy``: every image's ``P × C`` map, ``[N, P, C]`` float32, rows of the patch grid in
      reading order (``maps="json"``: in ``explanations.json`` instead, for small runs);
    - ``explanations.json``: class names, grid, read-out, and per image its name, source path, predicted
      class, top-``top_k`` probabilities and overlay file;
    - ``<name>.png`` overlays (``overlays``: the predicted class (``top1``), the ``top_k`` classes
      (``topk``), or none; ``smooth``: bilinear maps, else one block per patch).

    Images are read by ``workers`` loader processes and overlays drawn by as many render processes (0: all
    here). An image holding NaN or Inf, or one the model's output for is not finite, is refused (an
    ExplainvecError naming it); a run that fails leaves ``out`` as it was. Returns the JSON path."""
    if top_k < 1:
        raise ExplainvecError(f"--top-k must be at least 1 (got {top_k})")
    if not isinstance(inputs, ExplainInputs):
        inputs = ExplainInputs(items=inputs)
    out = Path(out)
    shown = {"none": 0, "top1": 1, "topk": top_k}[overlays]
    grid = tuple(model.vit.patch_embed.grid_size)
    records: list[dict] = []
    run = Stream(model, preprocess, inputs, out, top_k, shown, grid, smooth, records)
    task = progress.task("explaining", total=len(inputs))

    def index() -> dict:
        shape = [len(inputs), grid[0] * grid[1], len(model.class_names)]
        layout = "P × C per image, rows in reading order of the patch grid"
        return {
            "class_names": model.class_names,
            "grid": list(grid),
            "readout": model.readout,
            "attributions": (
                {"file": MAPS, "shape": shape, "dtype": "float32", "layout": f"[N, P, C]: {layout}"}
                if maps == "npy"
                else layout
            ),
            "images": records,
        }

    created, waiting = not out.exists(), 2 * max(1, workers)
    model.to(device).eval()
    try:
        with overlay_workers(workers if shown else 0) as pool:
            batches = explain_loader(inputs, batch_size=batch_size, workers=workers)
            if maps == "npy":

                def fill(tmp: Path) -> None:
                    shape = (len(inputs), grid[0] * grid[1], len(model.class_names))
                    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
                    run.all(batches, device, pool, waiting, task, array)
                    array.flush()
                    del array

                atomic_write_together(
                    [(out / MAPS, fill), (out / INDEX, lambda tmp: json_writer(index())(tmp))]
                )
            else:
                run.all(batches, device, pool, waiting, task, None)
                atomic_write(out / INDEX, json_writer(index()))
    except BaseException:
        for path in run.written:
            path.unlink(missing_ok=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    return out / INDEX


class Stream:
    """One run of ``explain_to_folder``: batches in, maps and records out, overlays handed to workers."""

    def __init__(
        self,
        model: SelfExplainingViT,
        preprocess: Preprocess,
        inputs: ExplainInputs,
        out: Path,
        top_k: int,
        shown: int,
        grid: tuple[int, int],
        smooth: bool,
        records: list[dict],
    ) -> None:
        self.model, self.preprocess, self.inputs, self.out = model, preprocess, inputs, out
        self.top_k, self.shown, self.grid, self.smooth, self.records = top_k, shown, grid, smooth, records
        self.written: list[Path] = []

    def all(
        self, batches: DataLoader, device, pool: Executor, waiting: int, task, array: np.ndarray | None
    ) -> None:
        """Explain every batch into ``array`` (or the records) and hand its overlays to ``pool``, with at
        most ``waiting`` batches of overlays not yet drawn."""
        pending: deque[Future] = deque()
        for positions, images, masks in batches:
            explanation = self.explain(positions, images, device)
            if array is not None:
                array[positions.numpy()] = explanation.attributions.numpy()
            overlays = self.record(positions, images, masks, explanation, keep_maps=array is None)
            if overlays is not None:
                pending.append(pool.submit(render_overlays, overlays))
                self.written += overlays.paths
            while len(pending) > waiting or (pending and pending[0].done()):
                pending.popleft().result()
            task.advance(len(positions))
        while pending:
            pending.popleft().result()

    def explain(self, positions: torch.Tensor, images: torch.Tensor, device) -> Explanation:
        """The model's explanation of one batch, on CPU; ExplainvecError naming the first image that is
        not finite, OutputError naming the first whose logits or attributions hold NaN or Inf."""
        finite = images.isfinite().flatten(1).all(dim=1)
        if not finite.all():
            name = self.inputs.names[int(positions[int((~finite).nonzero()[0])])]
            raise ExplainvecError(f"image {name} holds NaN or Inf after preprocessing; nothing was explained")
        explanation = self.model(images.to(device))
        logits, attributions = explanation.logits.float().cpu(), explanation.attributions.float().cpu()
        finite = logits.isfinite().all(dim=1) & attributions.isfinite().flatten(1).all(dim=1)
        if not finite.all():
            name = self.inputs.names[int(positions[int((~finite).nonzero()[0])])]
            raise OutputError(
                f"the model's output for image {name} holds NaN or Inf (its weights are too large, e.g. a "
                "vector added with a huge λ); nothing was written"
            )
        return Explanation(
            logits, attributions, explanation.grid, explanation.image_size, self.model.class_names
        )

    def record(
        self,
        positions: torch.Tensor,
        images: torch.Tensor,
        masks: list[torch.Tensor | None],
        explanation: Explanation,
        *,
        keep_maps: bool,
    ) -> OverlayBatch | None:
        """Add one record per image of the batch; return the batch's overlays to draw, if any."""
        names, classes = self.inputs.names, self.model.class_names
        top = explanation.probabilities.topk(min(self.top_k, len(classes)), dim=1)
        shown = min(self.shown, top.indices.shape[1])
        batch_names = [names[position] for position in positions.tolist()]
        for row, name in enumerate(batch_names):
            best = top.indices[row].tolist()
            record = {
                "name": name,
                "path": self.inputs.paths[int(positions[row])],
                "image": f"{name}.png" if shown else None,
                "predicted": classes[best[0]],
                "top_k": {classes[c]: p for c, p in zip(best, top.values[row].tolist(), strict=True)},
            }
            if keep_maps:
                record["attributions"] = explanation.attributions[row].tolist()
            self.records.append(record)
        if not shown:
            return None
        chosen = top.indices[:, :shown]
        maps = explanation.attributions.gather(
            2, chosen[:, None, :].expand(-1, explanation.attributions.shape[1], -1)
        )
        values = top.values[:, :shown].tolist()
        return OverlayBatch(
            paths=[self.out / f"{name}.png" for name in batch_names],
            images=images.numpy(),
            maps=maps.transpose(1, 2).reshape(len(batch_names), shown, *self.grid).numpy(),
            titles=[
                [f"{classes[c]} p={p:.2f}" for c, p in zip(row, row_values, strict=True)]
                for row, row_values in zip(chosen.tolist(), values, strict=True)
            ],
            suptitles=[
                f"{name}: predicted {classes[row[0]]}"
                for name, row in zip(batch_names, chosen.tolist(), strict=True)
            ],
            masks=[None if mask is None else mask.numpy() for mask in masks],
            preprocess=self.preprocess,
            smooth=self.smooth,
        )


@dataclass
class ExplainedRun:
    """What an ``explain`` run wrote, read back: its JSON index and the ``[N, P, C]`` maps (memory-mapped
    from ``attributions.npy``, or from the JSON of a ``--maps json`` run)."""

    index: dict
    attributions: np.ndarray

    @property
    def class_names(self) -> list[str]:
        return self.index["class_names"]

    @property
    def paths(self) -> list[str | None]:
        return [record.get("path") for record in self.index["images"]]

    @property
    def names(self) -> list[str]:
        return [record["name"] for record in self.index["images"]]


def read_explained(folder: str | Path) -> ExplainedRun:
    """Read back what ``explain_to_folder`` wrote into ``folder``."""
    folder = Path(folder)
    index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    if isinstance(index["attributions"], dict):
        attributions = np.load(folder / index["attributions"]["file"], mmap_mode="r")
    else:
        grid, classes = index["grid"], len(index["class_names"])
        attributions = np.array(
            [record["attributions"] for record in index["images"]], dtype=np.float32
        ).reshape(-1, grid[0] * grid[1], classes)
    return ExplainedRun(index, attributions)
