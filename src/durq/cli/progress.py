"""Progress bars for the commands that go through many jobs (purge, bulk resubmit and
cancel, export, import).

The bar is drawn on stderr, and only when stderr is a terminal: redirected or piped output
is exactly what it would be without it, and a cron job's log gets no bar. It is cleared when
the work ends, leaving the command's own last line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text


class Tracker:
    """What a command tells as it goes: ``advance(n)`` after each batch. Does nothing when
    there is no bar to draw."""

    def __init__(self, bar: Progress | None = None, task: TaskID | None = None) -> None:
        self._bar = bar
        self._task = task

    def advance(self, done: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, done)

    def restart(self, what: str, total: int | None) -> None:
        """A new stage of the work (import: reading the file, then storing the jobs)."""
        if self._bar is not None and self._task is not None:
            self._bar.reset(self._task, description=what, total=total)


class _Count(ProgressColumn):
    """``1,500/12,000``, or ``1,500`` when the total is not known."""

    def render(self, task: Task) -> Text:
        done = f"{int(task.completed):,}"
        return Text(done if task.total is None else f"{done}/{int(task.total):,}")


@contextmanager
def bar(
    what: str, total: Callable[[], int | None], *, data_on_stdout: bool = False
) -> Iterator[Tracker]:
    """A bar on stderr, when stderr is a terminal, for ``total()`` jobs (asked only then:
    counting may cost a query; ``None``: not known, the bar pulses). ``data_on_stdout``: the
    command writes its results on stdout as it goes (export), so the bar is drawn only when
    stdout goes elsewhere, not through it."""
    err = Console(stderr=True)
    if not err.is_terminal or (data_on_stdout and Console().is_terminal):
        yield Tracker()
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        _Count(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        # Never route stdout through the bar's console: results stay on stdout.
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with progress:
        yield Tracker(progress, progress.add_task(what, total=total()))
