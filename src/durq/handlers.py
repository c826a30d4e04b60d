"""Handlers: finding one by its ``package.module:function`` name, and running it for a job.

A handler is a plain function ``handle(job: durq.Job) -> JSON value | None``. What it does
decides the attempt's outcome: a return value succeeds (the value becomes ``result``),
``durq.Unprocessable`` fails it for good, any other exception fails it for a retry.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import threading
import traceback
from collections.abc import Callable
from typing import Any

from durq.errors import HandlerError, Unprocessable
from durq.job import JSON, Job

Handler = Callable[[Job], Any]


def load_handler(spec: str) -> Handler:
    """Import ``package.module:function`` and return the function.

    Raises ``HandlerError`` (one line naming ``spec`` and the cause) when the name is
    malformed, the module cannot be imported, the attribute is missing or is not callable.
    """
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise HandlerError(f"bad handler {spec!r}: use package.module:function")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        # Any exception: an import runs the module's code, which may fail in any way.
        cause = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise HandlerError(f"cannot import handler {spec!r}: {cause}") from exc
    for name in attr_path.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise HandlerError(f"cannot load handler {spec!r}: no {name!r} in it") from None
    if not callable(target):
        kind = type(target).__name__
        raise HandlerError(f"cannot load handler {spec!r}: it is a {kind}, not a function")
    handler: Handler = target
    return handler


class Verdict(enum.Enum):
    """What the handler did with one attempt."""

    RETURNED = "returned"  # success; ``value`` is the result
    RAISED = "raised"  # any exception; ``value`` is the traceback text
    UNPROCESSABLE = "unprocessable"  # durq.Unprocessable; ``value`` is its reason


@dataclasses.dataclass(frozen=True, slots=True)
class HandlerOutcome:
    verdict: Verdict
    value: JSON


def call_handler(handler: Handler, job: Job) -> HandlerOutcome:
    """Run ``handler(job)`` and sort what happened into a ``HandlerOutcome``; never raises."""
    try:
        result = handler(job)
    except Unprocessable as exc:
        return HandlerOutcome(Verdict.UNPROCESSABLE, str(exc) or type(exc).__name__)
    except BaseException:
        # BaseException too: a handler calling sys.exit() fails its attempt, not the worker.
        return HandlerOutcome(Verdict.RAISED, traceback.format_exc())
    return HandlerOutcome(Verdict.RETURNED, result)


class HandlerThread:
    """Runs the handler for one job at a time, in one long-lived daemon thread.

    One thread for the worker's life, not one per job: starting a thread costs about as much
    as a fast handler's whole attempt. Daemon, because a handler that overruns its timeout
    (or outlives a shutdown grace) is abandoned: the worker process exits with ``os._exit``
    while it still runs.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._ready = threading.Condition()
        self._job: Job | None = None  # handed over, not yet taken by the thread
        self._done = threading.Event()
        self._done.set()  # nothing running
        self.outcome: HandlerOutcome | None = None
        self._thread = threading.Thread(target=self._serve, name="durq-handler", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            with self._ready:
                while self._job is None:
                    self._ready.wait()
                job, self._job = self._job, None
            try:
                self.outcome = call_handler(self._handler, job)
            finally:
                self._done.set()

    def start(self, job: Job) -> None:
        """Hand ``job`` to the thread; the previous one must have finished."""
        if not self._done.is_set():
            raise RuntimeError("the handler is still running the previous job")
        self.outcome = None
        self._done.clear()
        with self._ready:
            self._job = job
            self._ready.notify()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True once the handler has finished the job."""
        return self._done.wait(timeout)
