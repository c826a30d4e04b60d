"""Hooks around every attempt an app's worker makes: for logging, Sentry, OpenTelemetry.

``@app.on_start`` functions get the ``Job`` before the task runs; ``@app.on_success`` ones the
job and the task's return value; ``@app.on_failure`` ones the job and the exception (a
``TimeoutError`` for a task that overran its timeout). They run where the task runs (its
thread, or the event loop for an async task), inside ``durq.current_job()``. A hook that
raises is logged and otherwise ignored: it never changes the attempt's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from durq.job import Job

log = logging.getLogger("durq.hooks")

StartHook = Callable[[Job], object]
SuccessHook = Callable[[Job, Any], object]
FailureHook = Callable[[Job, BaseException], object]


class Hooks:
    def __init__(self) -> None:
        self.start: list[StartHook] = []
        self.success: list[SuccessHook] = []
        self.failure: list[FailureHook] = []

    def __bool__(self) -> bool:
        return bool(self.start or self.success or self.failure)

    def started(self, job: Job) -> None:
        for hook in self.start:
            _call(hook, job)

    def succeeded(self, job: Job, result: Any) -> None:
        for hook in self.success:
            _call(hook, job, result)

    def failed(self, job: Job, error: BaseException) -> None:
        for hook in self.failure:
            _call(hook, job, error)


def _call(hook: Callable[..., object], *args: Any) -> None:
    try:
        hook(*args)
    except Exception:
        name = getattr(hook, "__qualname__", repr(hook))
        log.exception("hook %s failed; the attempt goes on as if it had not run", name)
