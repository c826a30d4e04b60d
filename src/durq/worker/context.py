"""What a running task can ask about itself, and do: ``durq.current_job()``,
``durq.cancel_requested()`` and ``durq.complete_in(connection, result)``.

Context variables, so each thread, and each asyncio task on the worker's event loop, sees its
own job (a worker runs many at once).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from durq.errors import DurqError
from durq.job import JSON, Job

if TYPE_CHECKING:
    from durq.queue import JobQueue


class CancelFlag:
    """Set once a running job should stop early; ``cancel_requested()`` reads it.

    Not a ``threading.Event``: nobody waits on it (a task polls it), and a worker makes one
    per job, where an Event's lock and condition cost ten times as much to make. Setting and
    reading one attribute is atomic under the GIL, and a flag only ever goes from unset to
    set, so no lock is needed.
    """

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class Running:
    """The job a task runs, as the task sees it."""

    __slots__ = ("cancel", "completed", "job", "queue")

    def __init__(self, job: Job, cancel: CancelFlag, queue: JobQueue | None) -> None:
        self.job = job
        self.cancel = cancel
        self.queue = queue  # None in eager mode: nothing is stored
        self.completed = False  # the task completed its job itself (complete_in)


_current: contextvars.ContextVar[Running | None] = contextvars.ContextVar(
    "durq_current_job", default=None
)


def _here(what: str) -> Running:
    running = _current.get()
    if running is None:
        raise DurqError(f"durq.{what}() is only available while a job runs")
    return running


def current_job() -> Job:
    """The ``Job`` this task or handler is running (its id for idempotency keys, its attempt
    number); ``DurqError`` outside a running job."""
    return _here("current_job").job


def job_queue() -> JobQueue | None:
    """The queue the running job came from (``None`` outside a job, or in eager mode)."""
    running = _current.get()
    return None if running is None else running.queue


def complete_in(connection: Any, result: JSON = None) -> Job:
    """Complete the running job in the application's open transaction on ``connection`` (a
    psycopg connection, or ``sqlite3`` to the queue's file): the job is ``succeeded``
    exactly when that transaction commits, with the task's effect. A stale lease raises
    ``durq.LeaseLost`` before anything is written: roll the transaction back. The worker
    then writes nothing more for the job (or, if the transaction did not commit, fails the
    attempt, to be tried again)."""
    running = _here("complete_in")
    if running.queue is None:  # eager mode: the job is not stored
        return running.job
    done = running.queue.complete_in(connection, running.job, result)
    running.completed = True
    return done


async def complete_in_async(connection: Any, result: JSON = None) -> Job:
    """``complete_in`` on the application's async psycopg connection."""
    running = _here("complete_in_async")
    if running.queue is None:
        return running.job
    done = await running.queue.complete_in_async(connection, running.job, result)
    running.completed = True
    return done


def cancel_requested() -> bool:
    """True once the running job was cancelled, or its worker lost the job's lease or is
    stopping past its grace: a thread task that checks it can stop early (an async task is
    cancelled outright). False outside a running job."""
    running = _current.get()
    return running is not None and running.cancel.is_set()


@contextmanager
def running(job: Job, cancel: CancelFlag, queue: JobQueue | None = None) -> Iterator[Running]:
    """Make ``job`` (claimed from ``queue``) the current job while the block runs."""
    here = Running(job, cancel, queue)
    token = _current.set(here)
    try:
        yield here
    finally:
        _current.reset(token)
