"""Progress events of long library loops (torch epochs, ALS/BPR sweeps), for a front end to show.

Library code never prints. A long loop opens a task with `progress_task(label, total,
unit)` and reports each finished step to it (`task.advance(loss=...)`); the events go to
the reporter a front end installed with `reporting(reporter)` (the CLI's bars on a
terminal and its heartbeat lines in logs), and nowhere when none is installed, so the
loop pays almost nothing for them. The reporter is a context variable: it follows the
code that installed it, not other threads.

The numbers a task carries (`info`, e.g. {"loss": 0.41, "validation": 0.92}) only
describe the loop; they never change what it computes.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator, Protocol


class Reporter(Protocol):
    """Receives the events of every task opened while it is installed."""

    def task_started(self, task: "Task") -> None:
        """`task` was opened (it has done nothing yet)."""

    def task_updated(self, task: "Task") -> None:
        """`task.done`, `task.total`, `task.text` or `task.info` changed."""

    def task_finished(self, task: "Task") -> None:
        """`task` is over (normally or not); it sends no more events."""


@dataclass(eq=False)
class Task:
    """One loop's progress.

    Attributes:
        label: what runs, e.g. "training mf".
        total: the number of steps, or None when unknown.
        unit: what a step is ("epoch", "sweep", "trial", "byte" ...).
        done: steps finished so far.
        text: what the current step is, when the label alone does not say (e.g.
            "fitting mf ..."); None otherwise.
        info: the latest figures worth showing, by name (e.g. {"loss": 0.41}).
    """

    label: str
    total: float | None = None
    unit: str = "step"
    done: float = 0
    text: str | None = None
    info: dict[str, float] = field(default_factory=dict)
    reporter: Reporter | None = field(default=None, repr=False)
    finished: bool = False

    def update(self, done: float | None = None, total: float | None = None, text: str | None = None,
               **info: float | None) -> None:
        """Set the steps done, the total, the current step's text and figures (a figure
        given as None is dropped)."""
        if done is not None:
            self.done = done
        if total is not None:
            self.total = total
        if text is not None:
            self.text = text
        self._merge(info)

    def advance(self, steps: float = 1, **info: float | None) -> None:
        """`steps` more steps are finished; `info` holds the figures they ended with."""
        self.done += steps
        self._merge(info)

    def _merge(self, info: dict[str, float | None]) -> None:
        for key, value in info.items():
            if value is None:
                self.info.pop(key, None)
            else:
                self.info[key] = float(value)
        if self.reporter is not None and not self.finished:
            self.reporter.task_updated(self)

    def finish(self) -> None:
        """The loop is over; later calls do nothing."""
        if not self.finished:
            self.finished = True
            if self.reporter is not None:
                self.reporter.task_finished(self)


_REPORTER: ContextVar[Reporter | None] = ContextVar("movierec_progress_reporter", default=None)


def current_reporter() -> Reporter | None:
    """The reporter installed by `reporting`, or None (then tasks report to no one)."""
    return _REPORTER.get()


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Send the events of every task opened inside to `reporter` (None: to no one)."""
    token = _REPORTER.set(reporter)
    try:
        yield
    finally:
        _REPORTER.reset(token)


def start_task(label: str, total: float | None = None, unit: str = "step") -> Task:
    """Open a task reporting to the current reporter; call its `finish()` when the loop
    ends, however it ends (or use `progress_task`)."""
    reporter = _REPORTER.get()
    task = Task(label=label, total=total, unit=unit, reporter=reporter)
    if reporter is not None:
        reporter.task_started(task)
    return task


@contextmanager
def progress_task(label: str, total: float | None = None, unit: str = "step") -> Iterator[Task]:
    """`start_task` as a context manager: the task finishes when the block ends."""
    task = start_task(label, total, unit)
    try:
        yield task
    finally:
        task.finish()


__all__ = ["Reporter", "Task", "current_reporter", "progress_task", "reporting", "start_task"]
