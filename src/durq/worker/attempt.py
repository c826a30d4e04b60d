"""One attempt in flight: the unit the worker runtime runs many of at once.

A ``RunningJob`` knows its job and the call that runs it, when it must end (its timeout),
whether it should stop early (a cancel flag that ``durq.cancel_requested()`` reads), and how
to turn what the call did into a ``durq.Finished``. Which thread or event loop runs it is the
slots' business, renewing its lease the lease keeper's, writing its outcome the settler's.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from typing import Any

from durq import codec
from durq.codec import Unreadable
from durq.errors import InvalidJob, Unprocessable
from durq.job import JSON, Finished, Job, Outcome
from durq.queue import JobQueue, QueueSettings
from durq.worker.context import CancelFlag
from durq.worker.context import running as running_as_current
from durq.worker.runners import Call


class RunningJob:
    """One claimed job from the moment its worker takes it until its outcome is written."""

    def __init__(
        self, job: Job, call: Call, settings: QueueSettings, queue: JobQueue | None = None
    ) -> None:
        self.job = job
        self.call = call
        self._settings = settings
        self.started = time.monotonic()
        self.deadline = self.started + job.timeout
        self.cancel = CancelFlag()  # seen by durq.cancel_requested()
        self.dropped: str | None = None  # why its outcome will not be written, once it won't
        self.abandoned = False  # a thread task past its timeout, left to itself
        self.stop_task: Callable[[], object] | None = None  # cancels an async task, once started
        self.queue = queue  # for durq.complete_in
        self.outcome: Finished | None = None  # once known, until it is written
        self.took = 0.0  # seconds it ran, once its outcome is known
        self.release_why = ""  # why it is handed back, when it is
        self.completed_in = False  # the task completed the job in its own transaction

    def ended(self, finished: Finished) -> Finished:
        """Note how the attempt ended (its outcome is on its way to the database)."""
        self.outcome = finished
        self.took = self.elapsed
        return finished

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def drop(self, why: str) -> None:
        """Give up on this attempt's outcome (its lease is gone, or the job was cancelled):
        ask the task to stop; whatever it returns is discarded."""
        self.dropped = why
        self.cancel.set()
        if self.stop_task is not None:
            self.stop_task()

    # -- running it ------------------------------------------------------------------------

    def run(self) -> Finished:
        """Run a plain call here, on the calling thread; never raises."""
        unreadable = self._unreadable()
        if unreadable is not None:
            return unreadable
        hooks = self.call.hooks
        with running_as_current(self.job, self.cancel, self.queue) as here:
            if hooks:
                hooks.started(self.job)
            try:
                value = self.call.target(*self.call.args, **self.call.kwargs)
                if asyncio.iscoroutine(value):
                    value.close()
                    raise TypeError("the task returned a coroutine: declare it async def")
            except BaseException as error:
                # BaseException too: a task calling sys.exit() fails its attempt, not the worker.
                if hooks and self.dropped is None:  # a dropped job's outcome is not its own
                    hooks.failed(self.job, error)
                self.completed_in = here.completed
                return self._raised(error)
            if hooks and self.dropped is None:
                hooks.succeeded(self.job, value)
        self.completed_in = here.completed
        return self._returned(value)

    async def run_async(self) -> Finished:
        """Run an ``async def`` call on the running event loop, within its timeout.

        Cancelled from outside (``drop``, or a stop past the grace) it raises
        ``CancelledError``, and its outcome is not wanted.
        """
        unreadable = self._unreadable()
        if unreadable is not None:
            return unreadable
        hooks = self.call.hooks
        with running_as_current(self.job, self.cancel, self.queue) as here:
            if hooks:
                hooks.started(self.job)
            # asyncio.timeout, not wait_for: it cancels the call in this task rather than
            # run it as a second task (Python 3.11's wait_for makes one per call), and it
            # tells its own expiry from a TimeoutError that the task raised itself.
            scope = asyncio.timeout_at(self._loop_deadline())
            try:
                async with scope:
                    value = await self.call.target(*self.call.args, **self.call.kwargs)
            except asyncio.CancelledError:
                raise
            except BaseException as error:
                if scope.expired():
                    return self.timed_out()
                if hooks and self.dropped is None:  # a dropped job's outcome is not its own
                    hooks.failed(self.job, error)
                self.completed_in = here.completed
                return self._raised(error)
            if hooks and self.dropped is None:
                hooks.succeeded(self.job, value)
        self.completed_in = here.completed
        return self._returned(value)

    def _loop_deadline(self) -> float:
        """The attempt's deadline on the running event loop's clock."""
        loop = asyncio.get_running_loop()
        return loop.time() + max(0.0, self.deadline - time.monotonic())

    # -- what happened, as a Finished ------------------------------------------------------

    def timed_out(self) -> Finished:
        """The attempt overran its timeout (told to the app's failure hooks)."""
        why = f"timed out after {self.job.timeout:g} s"
        if self.call.hooks:
            with running_as_current(self.job, self.cancel):
                self.call.hooks.failed(self.job, TimeoutError(why))
        return self.failed(why)

    def failed(self, error: str) -> Finished:
        return Finished(self.job, Outcome.FAILED, error=error)

    def released(self) -> Finished:
        return Finished(self.job, Outcome.RELEASED)

    def _unreadable(self) -> Finished | None:
        if isinstance(self.job.payload, Unreadable):
            # Stored behind durq's back (it refuses such payloads): no task could use it.
            why = f"the payload cannot be read: {self.job.payload.reason}"
            return Finished(self.job, Outcome.UNPROCESSABLE, error=why)
        return None

    def _raised(self, error: BaseException) -> Finished:
        if isinstance(error, Unprocessable):
            reason = str(error) or type(error).__name__
            return Finished(self.job, Outcome.UNPROCESSABLE, error=reason)
        text = "".join(traceback.format_exception(error))
        outcome = Outcome.FAILED if self.call.retries(error) else Outcome.UNPROCESSABLE
        return Finished(self.job, outcome, error=text)

    def _returned(self, value: Any) -> Finished:
        if self.completed_in:
            # The task completed its job in its own transaction. Had that committed, this
            # failure is refused (the lease is gone); if not, the attempt must count as failed.
            why = "durq.complete_in was called, but the transaction it wrote in did not commit"
            return self.failed(why)
        # Checked here, on the task's thread, so one bad result cannot spoil a batch.
        try:
            codec.encode(
                value,
                "the task's return value",
                self._settings.max_payload_bytes,
                self._settings.max_payload_depth,
            )
        except InvalidJob as exc:
            return self.failed(f"the handler's return value cannot be stored: {exc}")
        result: JSON = value
        return Finished(self.job, Outcome.SUCCEEDED, result=result)
