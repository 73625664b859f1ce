"""Progress reporting: the library calls a small tracker; the command line supplies a rich one.

``tracker.task("fine-tune", total=100)`` returns a task with ``advance(steps=1, description=None)``.
The default, :data:`SILENT`, does nothing, so library code never checks whether progress is wanted.
"""

from __future__ import annotations

from typing import Protocol


class Task(Protocol):
    """One bar: advanced as work gets done, its description optionally updated."""

    def advance(self, steps: int = 1, description: str | None = None) -> None: ...


class Tracker(Protocol):
    """Starts tasks of ``total`` steps (``completed`` of them already done, e.g. on resume)."""

    def task(self, description: str, total: int, completed: int = 0) -> Task: ...


class _SilentTask:
    def advance(self, steps: int = 1, description: str | None = None) -> None:
        return None


class SilentTracker:
    """A tracker that reports nothing (the default everywhere in the library)."""

    def task(self, description: str, total: int, completed: int = 0) -> Task:
        return _SilentTask()


SILENT: Tracker = SilentTracker()
