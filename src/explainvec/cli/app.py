"""The ``explainvec`` Typer app, its console, progress bars and one-line errors."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress]:
    """A shared rich progress display for one command (``enabled=False``: silent, e.g. on ranks > 0)."""
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
    ) as progress:
        yield progress
