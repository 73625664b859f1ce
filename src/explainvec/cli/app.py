"""The ``explainvec`` Typer app, its console, progress bars and one-line errors."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from explainvec.data.folder import DataError

app = typer.Typer(
    name="explainvec",
    help="Single-pass Shapley explanations for ViT classifiers, transferred by an explainability vector.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)

USER_ERRORS = (DataError, ValueError, FileNotFoundError, FileExistsError)
F = TypeVar("F", bound=Callable)


def handle_errors(command: F) -> F:
    """Turn a user error into a one-line message and exit status 2 instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as error:
            console.print(f"[bold red]error:[/] {one_line(error)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from error

    return wrapper  # type: ignore[return-value]


def one_line(error: Exception) -> str:
    """The message of ``error``; for one re-raised from a data-loading worker (whose message carries the
    worker's traceback), the original exception's message alone."""
    message = str(error)
    if "Original Traceback" in message:
        message = message.strip().splitlines()[-1].split(": ", 1)[-1]
    return message


class RichTracker:
    """The library's progress tracker (``explainvec.progress``) drawn as rich progress bars."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def task(self, description: str, total: int, completed: int = 0) -> RichTask:
        return RichTask(self.progress, self.progress.add_task(description, total=total, completed=completed))


class RichTask:
    """One rich progress bar."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.id = progress, task

    def advance(self, steps: int = 1, description: str | None = None) -> None:
        if description is None:
            self.progress.advance(self.id, steps)
        else:
            self.progress.update(self.id, advance=steps, description=description)


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[RichTracker]:
    """A shared rich progress display for one command (``enabled=False``: silent, e.g. on ranks > 0)."""
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
    ) as progress:
        yield RichTracker(progress)
