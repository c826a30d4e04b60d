"""The worker (consumer): claims jobs one at a time and runs a handler for each.

How one worker process is laid out, and why:

- The handler runs in a daemon thread (``handlers.HandlerThread``); the main thread supervises
  it. The main thread is never inside user code, so it alone decides the attempt's fate:
  it renews the lease every third of the lease, enforces the job's ``timeout``, counts the
  shutdown grace and sees signals (Python runs signal handlers in the main thread only).
  With the handler in the main thread instead, a watchdog thread would have to enforce the
  timeout and grace, and it and the main thread could race to finish the same attempt.
- A thread cannot be stopped from outside. So when a handler overruns its timeout, or the
  grace after a stop signal, the worker records the outcome (fail as timed out, or release),
  then leaves with ``os._exit``: the abandoned handler dies with the process, mid-way, as in
  a crash, which handlers must tolerate anyway (at-least-once). A plain interpreter exit
  would wait on, or tear down under, a thread that may hold locks.
- Signal handlers only count signals (no logging, no locks: either could deadlock against
  the interrupted code); the main loop acts on the count.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from durq import validation
from durq.codec import Unreadable
from durq.errors import DurqError, HandlerError, InvalidJob, LeaseLost, WorkerError
from durq.handlers import Handler, HandlerOutcome, HandlerThread, Verdict, load_handler
from durq.job import JSON, Job, JobState
from durq.queue import DEFAULT_LEASE, JobQueue

__all__ = ["HandlerError", "Worker", "WorkerError", "current_queue", "load_handler"]

log = logging.getLogger("durq.worker")

DEFAULT_GRACE = 30.0
TIMEOUT_EXIT_CODE = 3  # the process exits with this after a job overran its timeout
_TICK = 0.05  # how often the main thread looks at signals, lease, timeout while a job runs
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"

_current_queue: JobQueue | None = None


def current_queue() -> JobQueue | None:
    """The queue the worker of this process claims from, while it runs; else ``None``.

    For handlers that need it, e.g. to enqueue follow-up jobs or to find files beside it.
    """
    return _current_queue


def _configure_logging() -> None:
    # Only when nobody configured logging (on the root or a ``durq`` logger, as the CLI does):
    # an application embedding the worker keeps its own setup, and no line is written twice.
    if not log.hasHandlers():
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=_LOG_FORMAT)


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


class Worker:
    """Claims jobs from ``queue`` and runs ``handler`` on each, one at a time.

    ``queues``: the queues to claim from (``None``: all). ``lease``: seconds a claim holds a
    job without renewal; renewed every third of it while the handler runs. ``grace``: seconds
    the current job may still run after SIGTERM/SIGINT before it is released. ``burst``: stop
    when no job is ready. ``max_jobs``: stop after that many jobs. ``idle_wait``: the longest
    an idle worker waits for a change before claiming again (jobs that become ready by time,
    like retries and delays, are noticed within it).
    """

    def __init__(
        self,
        queue: JobQueue,
        handler: Handler,
        *,
        queues: Sequence[str] | None = None,
        lease: float = DEFAULT_LEASE,
        worker_id: str | None = None,
        grace: float = DEFAULT_GRACE,
        burst: bool = False,
        max_jobs: int | None = None,
        idle_wait: float = 0.5,
    ) -> None:
        try:
            checked = validation.queue_names(queues)
            self.lease = validation.seconds(lease, "lease", allow_zero=False)
            self.grace = validation.seconds(grace, "grace", allow_zero=True)
            self.idle_wait = validation.seconds(idle_wait, "idle_wait", allow_zero=False)
            if max_jobs is not None:
                validation.whole_number(max_jobs, "max_jobs", minimum=1)
        except InvalidJob as exc:
            raise WorkerError(f"bad worker option: {exc}") from None
        if worker_id is not None and not worker_id.strip():
            raise WorkerError("bad worker option: worker_id must not be empty")
        self.queue = queue
        self.handler = handler
        self.queues = list(checked) if checked is not None else None
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.burst = burst
        self.max_jobs = max_jobs
        self.jobs_done = 0
        self._signals = 0
        self._last_signal: int | None = None
        # Report to the workers registry well within the time after which it drops a worker.
        self._registry_interval = min(5.0, queue.settings.worker_stale_after / 3)
        self._next_registration = 0.0
        self._handler_thread: HandlerThread | None = None  # started with the first job

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the exit code (0). Call it from the main thread.

        Installs SIGTERM/SIGINT handlers for a warm shutdown (restored on return). Exits the
        process itself, with ``os._exit``, when a handler must be abandoned: after a job's
        timeout (code 3), or when the shutdown grace ends or a second signal comes while a
        job runs (code 0, the job released first). A ``DurqError`` from the queue (say, the
        database is gone) propagates, after the worker has left the registry if it could.
        """
        global _current_queue
        _configure_logging()
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        _current_queue = self.queue
        try:
            self._register()
            log.info(
                "worker %s started: queues=%s lease=%gs grace=%gs handler=%s",
                self.worker_id,
                ",".join(self.queues) if self.queues else "*",
                self.lease,
                self.grace,
                _handler_name(self.handler),
            )
            try:
                reason = self._loop()
            finally:
                self._deregister()
            log.info("worker %s stopped (%s) after %d jobs", self.worker_id, reason, self.jobs_done)
            return 0
        finally:
            _current_queue = None
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self._last_signal = signum

    def _stop_reason(self) -> str:
        name = signal.Signals(self._last_signal).name if self._last_signal else "signal"
        return f"{name} received"

    def _limit_reached(self) -> bool:
        return self.max_jobs is not None and self.jobs_done >= self.max_jobs

    def _loop(self) -> str:
        """Claim and process jobs until told to stop; returns why it stopped."""
        job: Job | None = None
        tried = False  # the last finish already claimed, and found nothing
        while True:
            if job is None:
                if self._signals:
                    return self._stop_reason()
                if self._limit_reached():
                    return f"max jobs {self.max_jobs} reached"
                self._keep_registered()
                if not tried:
                    job = self.queue.claim(self.worker_id, self.queues, self.lease)
                tried = False
                if job is None:
                    if self.burst:
                        return "burst: no job ready"
                    wait = min(self.idle_wait, self._next_registration - time.monotonic())
                    self.queue.wait_for_change(max(wait, 0.001))
                    continue
            if self._signals:
                # Claimed together with the last completion, but the stop came before its
                # handler started: hand it back untouched rather than start new work.
                self._release(job, 0.0, self._stop_reason())
                return self._stop_reason()
            job, tried = self._process(job)

    # -- one job -----------------------------------------------------------------------------

    def _process(self, job: Job) -> tuple[Job | None, bool]:
        """Run the handler on ``job`` and record the outcome; returns the next job, claimed in
        the same transaction when the worker goes on, and whether that claim was tried."""
        started = time.monotonic()
        log.debug("job %s queue=%s attempt=%d started", job.id, job.queue, job.attempts)
        if isinstance(job.payload, Unreadable):
            # Stored behind durq's back (it refuses such payloads): no handler could use it.
            why = f"the payload cannot be read: {job.payload.reason}"
            self.jobs_done += 1
            return self._finish(job, HandlerOutcome(Verdict.UNPROCESSABLE, why), 0.0)
        if self._handler_thread is None:
            self._handler_thread = HandlerThread(self.handler)
        self._handler_thread.start(job)
        outcome, lease_held = self._supervise(job, self._handler_thread, started)
        elapsed = time.monotonic() - started
        self.jobs_done += 1
        if not lease_held:
            self._log(job, logging.ERROR, f"lease lost; outcome discarded after {elapsed:.3f}s")
            return None, False
        return self._finish(job, outcome, elapsed)

    def _supervise(
        self, job: Job, run: HandlerThread, started: float
    ) -> tuple[HandlerOutcome, bool]:
        """Wait for the handler while renewing the lease and watching timeout and signals.

        Returns the outcome and whether the lease is still held. Does not return when the
        job overruns its timeout or must be given up on a stop (see ``_abandon``).
        """
        lease_held = True
        renew_every = self.lease / 3
        next_renewal = started + renew_every
        timeout_at = started + job.timeout
        grace_until: float | None = None
        while not run.wait(_TICK):
            now = time.monotonic()
            if now >= timeout_at:
                self._time_out(job, lease_held)
            if self._signals >= 2:
                self._abandon(job, lease_held, now - started, "second signal: stopping now")
            if self._signals and grace_until is None:
                grace_until = now + self.grace
                log.info(
                    "%s: no more claims; job %s has %gs to finish",
                    self._stop_reason(),
                    job.id,
                    self.grace,
                )
            if grace_until is not None and now >= grace_until:
                self._abandon(job, lease_held, now - started, f"grace of {self.grace:g}s ended")
            if lease_held and now >= next_renewal:
                lease_held = self._renew(job)
                next_renewal = now + renew_every
            self._keep_registered()
        assert run.outcome is not None  # set before the thread signals it is done
        return run.outcome, lease_held

    def _renew(self, job: Job) -> bool:
        """Renew the lease; False once it is lost (another attempt owns the job now)."""
        try:
            self.queue.heartbeat(job, self.lease)
        except LeaseLost as exc:
            self._log(job, logging.ERROR, f"lease lost while running ({exc})")
            return False
        except DurqError as exc:
            # Not lost yet: try again at the next renewal, while the lease lasts.
            self._log(job, logging.WARNING, f"could not renew the lease: {exc}")
        return True

    def _finish(self, job: Job, outcome: HandlerOutcome, elapsed: float) -> tuple[Job | None, bool]:
        # Going on: finish this job and claim the next in one transaction (one commit per job).
        go_on = not self._signals and not self._limit_reached()
        try:
            if outcome.verdict is Verdict.RETURNED:
                try:
                    following = self._complete(job, outcome.value, go_on)
                    self._log(job, logging.INFO, f"succeeded in {elapsed:.3f}s")
                    return following, go_on
                except InvalidJob as exc:  # the result is not JSON, or too big; job unchanged
                    outcome = HandlerOutcome(
                        Verdict.RAISED, f"the handler's return value cannot be stored: {exc}"
                    )
            retry = outcome.verdict is Verdict.RAISED
            error = str(outcome.value)
            failed, following = self._fail(job, error, retry, go_on)
        except LeaseLost as exc:
            self._log(job, logging.ERROR, f"lease lost; outcome discarded ({exc})")
            return None, False
        if not retry:
            self._log(job, logging.WARNING, f"unprocessable in {elapsed:.3f}s: {error}")
        elif failed.state is JobState.QUEUED:
            wait = max(failed.run_at.timestamp() - time.time(), 0.0)
            self._log(
                job,
                logging.WARNING,
                f"failed in {elapsed:.3f}s, retry in {wait:.1f}s: {_last_line(error)}",
            )
        else:
            self._log(
                job,
                logging.WARNING,
                f"failed in {elapsed:.3f}s, no attempts left, unprocessable: {_last_line(error)}",
            )
        return following, go_on

    def _complete(self, job: Job, result: JSON, go_on: bool) -> Job | None:
        if not go_on:
            self.queue.complete(job, result)
            return None
        _, following = self.queue.complete_and_claim(
            job, result, worker_id=self.worker_id, queues=self.queues, lease=self.lease
        )
        return following

    def _fail(self, job: Job, error: str, retry: bool, go_on: bool) -> tuple[Job, Job | None]:
        if not go_on:
            return self.queue.fail(job, error, retry), None
        return self.queue.fail_and_claim(
            job, error, retry, worker_id=self.worker_id, queues=self.queues, lease=self.lease
        )

    def _release(self, job: Job, elapsed: float, why: str) -> None:
        try:
            self.queue.release(job)
        except LeaseLost as exc:
            self._log(job, logging.ERROR, f"could not release, lease lost ({exc})")
            return
        self._log(job, logging.WARNING, f"released after {elapsed:.3f}s ({why})")

    def _time_out(self, job: Job, lease_held: bool) -> NoReturn:
        error = f"timed out after {job.timeout:g} s"
        code = TIMEOUT_EXIT_CODE
        # The handler thread is still running: once the job is failed (and maybe queued
        # again) another worker may start it, so recording that is the last thing done.
        self._deregister()
        if lease_held:
            try:
                failed = self.queue.fail(job, error, retry=True)
                then = "retry later" if failed.state is JobState.QUEUED else "unprocessable"
                self._log(job, logging.ERROR, f"{error} ({then}); exiting to restart clean")
            except LeaseLost as exc:
                self._log(job, logging.ERROR, f"{error}; lease lost ({exc}); exiting")
            except DurqError as exc:
                self._log(job, logging.ERROR, f"{error}; could not record it ({exc}); exiting")
        self._exit(code)

    def _abandon(self, job: Job, lease_held: bool, elapsed: float, why: str) -> NoReturn:
        """Release the still-running job and leave: its handler thread cannot be stopped."""
        code = 0
        # The handler thread is still running: once the job is released another worker may
        # start it, so the release is the last write before the process ends.
        self._deregister()
        log.info("worker %s stopping (%s) after %d jobs", self.worker_id, why, self.jobs_done)
        if lease_held:
            try:
                self._release(job, elapsed, why)
            except DurqError as exc:
                # The job stays running until its lease expires, then another worker takes it.
                self._log(job, logging.ERROR, f"could not release ({exc})")
                code = 1
        self._exit(code)

    @staticmethod
    def _exit(code: int) -> NoReturn:
        # Log records are written and flushed as they are emitted; only the streams remain.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def _log(self, job: Job, level: int, what: str) -> None:
        log.log(level, "job %s queue=%s attempt=%d %s", job.id, job.queue, job.attempts, what)

    # -- the workers registry ----------------------------------------------------------------

    def _register(self) -> None:
        self.queue.worker_heartbeat(
            self.worker_id, host=socket.gethostname(), pid=os.getpid(), queues=self.queues
        )
        self._next_registration = time.monotonic() + self._registry_interval

    def _keep_registered(self) -> None:
        if time.monotonic() >= self._next_registration:
            try:
                self._register()
            except DurqError as exc:
                log.warning("worker %s: could not report to the registry: %s", self.worker_id, exc)
                self._next_registration = time.monotonic() + self._registry_interval

    def _deregister(self) -> None:
        try:
            self.queue.worker_stopped(self.worker_id)
        except DurqError as exc:
            log.warning("worker %s: could not leave the registry: %s", self.worker_id, exc)


def _handler_name(handler: Handler) -> str:
    module = getattr(handler, "__module__", None) or "?"
    name = getattr(handler, "__qualname__", None) or repr(handler)
    return f"{module}:{name}"
