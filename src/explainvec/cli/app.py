"""The ``explainvec`` Typer app, its console, progress bars and one-line errors."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from explainvec.errors import ExplainvecError

app = typer.Typer(
    name="explainvec",
    help="Single-pass Shapley explanations for ViT classifiers, transferred by an explainability vector.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)

USER_ERRORS = (ExplainvecError, ValueError, FileNotFoundError, FileExistsError, PermissionError)
"""Bad input: a one-line message and exit status 2 (``ExplainvecError`` and its kinds are the project's)."""
F = TypeVar("F", bound=Callable)


class Options:
    """What was given before the command (``explainvec --debug …``); set by ``main`` on each invocation."""

    debug = False


@app.callback()
def main(
    debug: bool = typer.Option(
        False, "--debug", help="Show the traceback of any error (before the command)."
    ),
) -> None:
    """Options given before any command."""
    Options.debug = debug


def handle_errors(command: F) -> F:
    """The guard around every command: a user error becomes a one-line message and exit status 2, any other
    exception a one-line message with a hint to rerun with ``--debug``, and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except Exception as error:
            if Options.debug or isinstance(error, typer.Exit | typer.Abort | typer.TyperException):
                raise
            user = isinstance(error, USER_ERRORS)
            message = one_line(error) if user else f"{type(error).__name__}: {one_line(error)}"
            hint = "" if user else " (unexpected; rerun as explainvec --debug … for the traceback)"
            console.print(f"[bold red]error:[/] {escape(message)}{hint}", highlight=False, soft_wrap=True)
            raise typer.Exit(2 if user else 1) from error

    return wrapper  # type: ignore[return-value]


def one_line(error: Exception) -> str:
    """The message of ``error`` on one line (bytes of file names that are not UTF-8 as ``\\xff``); for one
    re-raised from a data-loading worker (whose message carries the worker's traceback), the original
    exception's message alone."""
    message = str(error).strip()
    if "Original Traceback" in message:
        message = message.splitlines()[-1].split(": ", 1)[-1]
    message = message.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")  # file names
    return " ".join(message.split()) or type(error).__name__


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


class RateColumn(ProgressColumn):
    """Steps per second, named by their unit (``123.4 images/s``)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} {self.unit}/s", style="progress.data.speed")


@contextmanager
def progress_bar(enabled: bool = True, unit: str | None = None) -> Iterator[RichTracker]:
    """A shared rich progress display for one command (``enabled=False``: silent, e.g. on ranks > 0;
    ``unit``: also show steps per second, e.g. ``images/s``)."""
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        *([RateColumn(unit)] if unit else []),
        console=console,
        disable=not enabled,
    ) as progress:
        try:
            yield RichTracker(progress)
        except BaseException:
            progress.live.transient = True  # a failed run's bar is cleared: its one-line error stands alone
            raise
