"""What a running task can ask about itself: ``durq.current_job()`` and
``durq.cancel_requested()``.

Context variables, so each thread, and each asyncio task on the worker's event loop, sees its
own job (a worker runs many at once).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from durq.errors import DurqError
from durq.job import Job


class _Running:
    __slots__ = ("cancel", "job")

    def __init__(self, job: Job, cancel: threading.Event) -> None:
        self.job = job
        self.cancel = cancel


_current: contextvars.ContextVar[_Running | None] = contextvars.ContextVar(
    "durq_current_job", default=None
)


def current_job() -> Job:
    """The ``Job`` this task or handler is running (its id for idempotency keys, its attempt
    number); ``DurqError`` outside a running job."""
    running = _current.get()
    if running is None:
        raise DurqError("durq.current_job() is only available while a job runs")
    return running.job


def cancel_requested() -> bool:
    """True once the running job was cancelled, or its worker lost the job's lease or is
    stopping past its grace: a thread task that checks it can stop early (an async task is
    cancelled outright). False outside a running job."""
    running = _current.get()
    return running is not None and running.cancel.is_set()


@contextmanager
def running(job: Job, cancel: threading.Event) -> Iterator[None]:
    """Make ``job`` the current job while the block runs."""
    token = _current.set(_Running(job, cancel))
    try:
        yield
    finally:
        _current.reset(token)
