"""Files: atomic writes (a temporary file beside the target, then a rename, so nothing is half-written),
outputs that never replace an input or an existing result, and safetensors reads; tensors with NaN or
Inf are refused both ways."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from explainvec.errors import FileFormatError, OutputError

Writer = Callable[[Path], None]
LOCK = ".explainvec-lock"


def atomic_write(path: str | Path, write: Writer) -> Path:
    """Call ``write(tmp)`` on a temporary path in ``path``'s folder, then rename it to ``path``."""
    return atomic_write_together([(Path(path), write)])[0]


def atomic_write_together(writes: list[tuple[Path, Writer]]) -> list[Path]:
    """Write every file to a temporary path first, then rename them in order: a failure while writing
    leaves every target as it was. (A crash between two renames can still pair a new file with an old
    one: callers that need the pair to match record a shared id in both, see ``models/checkpoint.py``.)"""
    temporaries: list[Path] = []
    path = writes[0][0]
    try:
        for path, write in writes:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            temporaries.append(Path(tmp))
            write(Path(tmp))
        for (path, _), tmp in zip(writes, temporaries, strict=True):
            os.replace(tmp, path)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {reason(error)}") from error
    finally:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)
    return [path for path, _ in writes]


def reason(error: OSError) -> str:
    """An operating-system error in a few words (``permission denied``), without the path it names."""
    return (error.strerror or str(error)).lower()


def json_writer(data: object) -> Writer:
    """What writes ``data`` as indented JSON."""
    return lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n")


def write_json(path: str | Path, data: object) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return atomic_write(path, json_writer(data))


def tensor_writer(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> Writer:
    """What writes ``tensors`` (and string ``metadata`` in the header) as safetensors, once all are checked
    to be finite (OutputError naming ``path`` and the tensor otherwise)."""
    require_finite(path, tensors)
    contiguous = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    return lambda tmp: save_file(contiguous, str(tmp), metadata=metadata)


def write_tensors(path: str | Path, tensors: dict[str, torch.Tensor]) -> Path:
    """Write tensors as safetensors, atomically, after checking that all are finite."""
    return atomic_write(path, tensor_writer(path, tensors))


def file_kind(path: str | Path) -> str:
    """What a weights file holds, from its first bytes: ``safetensors``, ``torch`` (a ``torch.save`` zip
    archive), ``pickle`` or ``unknown``. Nothing is unpickled."""
    with open(path, "rb") as file:
        head = file.read(9)
    if head.startswith(b"PK\x03\x04"):
        return "torch"
    if head.startswith(b"\x80"):
        return "pickle"
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    return "unknown"


def not_safetensors(path: str | Path, error: Exception) -> FileFormatError:
    """The error for a file that should be safetensors and is not, saying what it is when that is known."""
    kind = file_kind(path)
    if kind in ("torch", "pickle"):
        return FileFormatError(
            f"{path} is not a safetensors file but a PyTorch pickle ({kind}); explainvec never unpickles "
            "checkpoints (a state dict named .pt/.pth/.bin is read weights-only where weights are imported)"
        )
    return FileFormatError(f"{path} is not a readable safetensors file: {error}")


def read_header(path: str | Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """The names and shapes of a safetensors file's tensors and its string metadata; no tensor is read."""
    try:
        with safe_open(str(path), framework="pt") as file:
            shapes = {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}  # noqa: SIM118
            return shapes, file.metadata() or {}
    except SafetensorError as error:
        raise not_safetensors(path, error) from error


def read_tensors(path: str | Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file, refusing one that is not safetensors or whose tensors hold NaN or Inf."""
    try:
        tensors = load_file(str(path), device=device)
    except SafetensorError as error:
        raise not_safetensors(path, error) from error
    name = non_finite(tensors)
    if name is not None:
        raise FileFormatError(f"refusing to load {path}: tensor {name!r} holds NaN or Inf")
    return tensors


def require_finite(path: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse to write ``tensors`` to ``path`` if one holds NaN or Inf (OutputError naming it)."""
    name = non_finite(tensors)
    if name is not None:
        raise OutputError(f"refusing to write {path}: tensor {name!r} holds NaN or Inf")


def non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding NaN or Inf, or None when all are finite."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return name
    return None


def check_outputs(
    outputs: Iterable[str | Path],
    *,
    inputs: Iterable[str | Path] = (),
    overwrite: bool = False,
    option: str = "--out",
) -> None:
    """Refuse outputs that are one of ``inputs`` (always) or that exist (unless ``overwrite``), before any
    work is done; OutputError naming the option and the file."""
    inputs = [Path(p) for p in inputs]
    for out in map(Path, outputs):
        for given in inputs:
            if _same_file(out, given):
                raise OutputError(
                    f"{option} {out} is also an input ({given}): write the result to a new file"
                )
        if os.path.lexists(out) and not overwrite:
            raise OutputError(
                f"{option} {out} exists: refusing to replace it (add --overwrite to replace it)"
            )


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and os.path.samefile(a, b)


@contextmanager
def output_folder(folder: str | Path, *, overwrite: bool = False, option: str = "--out") -> Iterator[Path]:
    """Hold ``folder`` for one run's results. Refused (OutputError) if it is a file, if another run holds
    it (its lock file), or if it already holds files (unless ``overwrite``); a folder created here and
    left empty is removed again."""
    folder = Path(folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise OutputError(f"{option} {folder} is a file, not a folder")
    created, lock = not folder.exists(), folder / LOCK
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create {option} {folder}: {reason(error)}") from error
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError as error:
        raise OutputError(
            f"{option} {folder} is held by another explainvec run (lock file {lock}; delete it if no run "
            "is writing there)"
        ) from error
    except OSError as error:
        raise OutputError(f"cannot write into {option} {folder}: {reason(error)}") from error
    try:
        if not overwrite and any(p.name != LOCK for p in folder.iterdir()):
            raise OutputError(
                f"{option} {folder} already holds files: refusing to mix results (choose a new folder, or "
                "add --overwrite to replace them)"
            )
        yield folder
    finally:
        lock.unlink(missing_ok=True)
        if created and not any(folder.iterdir()):
            folder.rmdir()


def check_resumable_folder(folder: str | Path, marker: str, option: str = "--out") -> None:
    """Refuse a ``folder`` a run would fill or resume when it is a file, or when it holds files but not
    ``marker`` (the file that says what the folder holds): it holds something else."""
    folder = Path(folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise OutputError(f"{option} {folder} is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / marker).is_file():
        raise OutputError(f"{option} {folder} holds files but no {marker}: choose a new or an empty folder")
