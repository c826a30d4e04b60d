"""The worker: claims jobs into free slots, runs them, keeps their leases and writes how they
ended, many at once.

How one worker process is laid out, and why:

- One control loop (the thread that calls ``run``) makes every decision and every database
  call of the worker's own: claims, outcomes, lease renewals, the registry. It blocks on one
  inbox only, which the other pieces post to: finished attempts, "the queue changed", stop.
  So no two threads ever race to decide how an attempt ends.
- Tasks run in slots (``slots.py``): plain functions on up to ``concurrency`` threads,
  ``async def`` tasks on one event loop, both at once if need be.
- A waker thread sits in ``JobQueue.wait_for_change`` while slots are free and the last claim
  came back short, so a new job is picked up within milliseconds without polling.
- The settler (``settler.py``) writes outcomes in batches with the next claims; the lease
  keeper (``leases.py``) renews every running job's lease in one statement per interval.
- A thread cannot be stopped from outside. A thread task that overruns its timeout is failed
  as timed out at once and left behind; a worker run as a program then stops as on SIGTERM
  (the other jobs finish within the grace, or are released) and exits with code 3, so its
  process manager starts a clean one. An async task past its timeout is simply cancelled.
"""

from __future__ import annotations

import logging
import os
import queue as inbox_queue
import secrets
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import NoReturn

from durq import validation
from durq.errors import BackendError, DurqError, InvalidJob, LeaseLost, WorkerError
from durq.job import Finished, Job, JobState, Outcome
from durq.queue import DEFAULT_LEASE, JobQueue
from durq.worker import predecessor
from durq.worker.attempt import RunningJob
from durq.worker.context import job_queue
from durq.worker.leases import LeaseKeeper
from durq.worker.outage import Outage
from durq.worker.runners import Handler, HandlerRunner, Runner
from durq.worker.scheduler import Scheduler
from durq.worker.settler import DEFAULT_MAX_BATCH, DEFAULT_WINDOW, Settler
from durq.worker.signals import name_of, stop_signals
from durq.worker.slots import EventLoop, ThreadSlots

log = logging.getLogger("durq.worker")

DEFAULT_GRACE = 30.0
# Chosen by measurement (docs/worker.md, "Why 32", and docs/benchmarks.md): a commit carries
# at most one outcome per slot, so short jobs drain faster with more slots; beyond 32, one
# process holds more long jobs than is fair to the others.
DEFAULT_CONCURRENCY = 32
TIMEOUT_EXIT_CODE = 3  # a worker program exits with this after a thread task overran
_WAIT_SLICE = 0.1  # seconds: how long a stopping worker may wait for its waker thread
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"

_current_queue: JobQueue | None = None


def current_queue() -> JobQueue | None:
    """The queue the running job was claimed from, else the queue the worker of this process
    claims from while it runs; else ``None``.

    For handlers that need it, e.g. to enqueue follow-up jobs or to find files beside it.
    """
    return job_queue() or _current_queue


class _Wake:
    """Inbox message: the queue may have changed (or the idle wait ran out)."""


class _Stop:
    """Inbox message: stop; ``cold`` releases running jobs at once."""

    def __init__(self, reason: str, cold: bool) -> None:
        self.reason = reason
        self.cold = cold


class _Done:
    """Inbox message: a slot finished an attempt (``finished`` None: it was cancelled)."""

    def __init__(self, running: RunningJob, finished: Finished | None) -> None:
        self.running = running
        self.finished = finished


_WAKE = _Wake()
Message = _Wake | _Stop | _Done


class Worker:
    """Claims jobs from ``queue`` and runs them, up to ``concurrency`` at once.

    ``runner``: a plain handler ``handle(job)`` or a ``Runner`` (an app's tasks).
    ``queues``: the queues to claim from (``None``: all). ``lease``: seconds a claim holds a
    job without renewal; renewed every third of it. ``grace``: seconds running jobs may
    still take after a stop is asked for, before they are released. ``burst``: stop when no
    job is ready. ``max_jobs``: stop after starting that many. ``idle_wait``: the longest an
    idle worker waits for a change before claiming again (jobs that become ready by time,
    like retries and delays, are noticed within it). ``batch_window``: seconds an outcome may
    wait to be written with others (see ``settler.py`` for what a crash can cost).
    ``install_signal_handlers``: SIGTERM/SIGINT stop the worker (main thread only); without
    them the worker is embedded: stop it with ``stop()``, and it never ends the process.
    """

    def __init__(
        self,
        queue: JobQueue,
        runner: Runner | Handler,
        *,
        queues: Sequence[str] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        lease: float = DEFAULT_LEASE,
        worker_id: str | None = None,
        grace: float = DEFAULT_GRACE,
        burst: bool = False,
        max_jobs: int | None = None,
        idle_wait: float = 0.5,
        batch_window: float = DEFAULT_WINDOW,
        install_signal_handlers: bool = True,
    ) -> None:
        try:
            checked = validation.queue_names(queues)
            self.concurrency = validation.whole_number(concurrency, "concurrency", minimum=1)
            self.lease = validation.seconds(lease, "lease", allow_zero=False)
            self.grace = validation.seconds(grace, "grace", allow_zero=True)
            self.idle_wait = validation.seconds(idle_wait, "idle_wait", allow_zero=False)
            window = validation.seconds(batch_window, "batch_window", allow_zero=True)
            if max_jobs is not None:
                validation.whole_number(max_jobs, "max_jobs", minimum=1)
        except InvalidJob as exc:
            raise WorkerError(f"bad worker option: {exc}") from None
        if worker_id is not None and not worker_id.strip():
            raise WorkerError("bad worker option: worker_id must not be empty")
        self.queue = queue
        self.runner: Runner = _as_runner(runner)
        self.queues = list(checked) if checked is not None else None
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.burst = burst
        self.max_jobs = max_jobs
        self.install_signal_handlers = install_signal_handlers
        self.jobs_done = 0  # attempts that ended, whatever their outcome
        self._jobs_started = 0
        self._inbox: inbox_queue.SimpleQueue[Message] = inbox_queue.SimpleQueue()
        self._running: dict[str, RunningJob] = {}
        self._threads = ThreadSlots(self.concurrency, self._slot_done)
        self._loop = EventLoop(self._slot_done)
        self._settler = Settler(
            queue,
            self.worker_id,
            self.queues,
            self.lease,
            window=window,
            max_batch=DEFAULT_MAX_BATCH,
        )
        self._leases = LeaseKeeper(queue, self.lease)
        self._scheduler = Scheduler(queue, getattr(self.runner, "periodic_tasks", ()))
        self._stop: _Stop | None = None
        self._signals = 0  # counted by the signal handler itself, seen before any dispatch
        self._last_signal: int | None = None
        self._grace_until: float | None = None
        self._grace_ended = False  # the grace ran out (or a cold stop came): release all
        self._cold = False  # a second signal, or stop(cold=True)
        self._exit_code = 0
        self._claim_now = True  # the last claim was full (or none yet): more may be ready
        self._want_changes = threading.Event()  # the waker should listen for changes
        self._closed = threading.Event()
        self._outage = Outage(f"worker {self.worker_id}")
        self._unsure_claims: list[str] = []  # claim ids whose answer may have been lost
        # Report to the workers registry well within the time after which it drops a worker.
        self._registry_interval = min(5.0, queue.settings.worker_stale_after / 3)
        self._next_registration = 0.0

    # -- starting and stopping -------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the exit code (0, or 3 after a thread task overran its
        timeout). A worker with signal handlers must be run from the main thread; when a task
        it cannot stop is still running at the end, it ends the process itself
        (``os._exit``) once everything else is written. A ``DurqError`` from the queue
        propagates, after the worker has left the registry if it could."""
        global _current_queue
        if self.install_signal_handlers:
            _configure_logging()
        _current_queue = self.queue
        try:
            if self.install_signal_handlers:
                with stop_signals(self._on_signal):
                    return self._run()
            return self._run()
        finally:
            _current_queue = None

    def stop(self, *, cold: bool = False) -> None:
        """Ask the worker to stop (from any thread): no more claims; running jobs get the
        grace to finish, or with ``cold`` are released at once."""
        self._inbox.put(_Stop("stop requested", cold))

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        self._last_signal = signum
        self._inbox.put(_Stop(f"{name_of(signum)} received", cold=self._signals > 1))

    def _run(self) -> int:
        log.info(
            "worker %s started: queues=%s concurrency=%d lease=%gs grace=%gs runs=%s",
            self.worker_id,
            ",".join(self.queues) if self.queues else "*",
            self.concurrency,
            self.lease,
            self.grace,
            self.runner.name,
        )
        self._meet_predecessor()
        waker = threading.Thread(target=self._wake_on_changes, name="durq-waker", daemon=True)
        waker.start()
        try:
            reason = self._control()
        finally:
            self._closed.set()
            self._want_changes.set()
            # The waker is inside wait_for_change for one slice at most: let it leave
            # before anyone closes the queue under it.
            waker.join(timeout=_WAIT_SLICE + 5)
            left_behind = self._threads.stop()
            self._loop.stop()
            self._deregister()
        log.info("worker %s stopped (%s) after %d jobs", self.worker_id, reason, self.jobs_done)
        if left_behind and self.install_signal_handlers:
            # A thread we could not stop still runs a task: leave now, as in a crash, rather
            # than wait on it, or tear the interpreter down under it.
            _exit(self._exit_code)
        return self._exit_code

    # -- the control loop ------------------------------------------------------------------

    def _control(self) -> str:
        """Claim, dispatch, renew and settle until told to stop; returns why it stopped."""
        while True:
            self._take(self._inbox_wait())
            self._time_out_overruns()
            self._end_grace()
            if not self._outage.wait_left():
                try:
                    self._talk_to_the_queue()
                except BackendError as exc:
                    # Lost connection, restart, full disk, a lock held too long: keep the
                    # jobs running and their outcomes pending, and try again later.
                    self._outage.failed("writing to the queue", exc)
                else:
                    self._outage.recovered()
            reason = self._finished_why()
            if reason is not None:
                return reason

    def _talk_to_the_queue(self) -> None:
        """Every database call of the loop's own: a ``BackendError`` leaves the rest for the
        next try, and what was not written is kept."""
        if self._unsure_claims:
            self._recover_claims()
        if self._running and self._leases.due_in() == 0:
            # A dropped job (cancelled, lease lost) is no longer ours: its lease is not
            # renewed, and it is not reported again at every renewal.
            held = [r for r in self._running.values() if r.dropped is None]
            for running, why in self._leases.renew(held):
                self._drop(running, why)
        self._settle_and_claim()
        if self._scheduler.due_in() == 0 and self._stop is None:
            self._scheduler.tick()
        self._keep_registered()

    def _recover_claims(self) -> None:
        """Run the jobs that claims whose answer was lost took (they would otherwise wait
        out their lease and count an attempt as lost)."""
        found = self.queue.recover_claims(self.worker_id, self._unsure_claims)
        self._unsure_claims.clear()
        lost = [job for job in found if job.id not in self._running]
        for job in lost:
            self._log_job(job, logging.WARNING, "recovered from a claim whose answer was lost")
        self._dispatch(lost)

    def _inbox_wait(self) -> float:
        """How long the loop may sleep: until the next thing it must do on its own."""
        if self._outage.ongoing:
            waits = [self._outage.wait_left()]
            if self._grace_until is not None:
                waits.append(self._grace_left())
            deadlines = [
                r.deadline
                for r in self._running.values()
                if r.outcome is None and not r.call.is_async
            ]
            if deadlines:  # overruns are still watched while the database is away
                waits.append(max(0.0, min(deadlines) - time.monotonic()))
            return min(waits)
        waits = [self._registry_due()]
        if self._running:
            waits.append(self._leases.due_in())
        deadlines = [r.deadline for r in self._running.values() if self._may_overrun(r)]
        if deadlines:
            waits.append(min(deadlines) - time.monotonic())
        due = self._settler.due_in(self._others_running())
        if due is not None:
            waits.append(due)
        if self._grace_until is not None:
            waits.append(self._grace_until - time.monotonic())
        scheduling = self._scheduler.due_in()
        if scheduling is not None and self._stop is None:
            waits.append(scheduling)
        if self._claim_now and self._free_slots() and self._stop is None and due is None:
            waits.append(0.0)
        return max(0.0, min(waits))

    def _grace_left(self) -> float:
        return 0.0 if self._grace_until is None else max(0.0, self._grace_until - time.monotonic())

    def _take(self, timeout: float) -> None:
        """Handle the inbox's messages: wait up to ``timeout`` for the first, take the rest."""
        try:
            message: Message | None = self._inbox.get(timeout=timeout) if timeout else None
            if message is None:
                message = self._inbox.get_nowait()
        except inbox_queue.Empty:
            return
        while True:
            self._handle(message)
            try:
                message = self._inbox.get_nowait()
            except inbox_queue.Empty:
                return

    def _handle(self, message: Message) -> None:
        if isinstance(message, _Done):
            running = message.running
            if self._running.get(running.job.id) is not running or running.outcome is not None:
                return  # its outcome is written or on its way already (timed out, released)
            if running.dropped is not None or message.finished is None:
                del self._running[running.job.id]
                self.jobs_done += 1
                # An admin's cancel is routine; a lost lease (or a task that could not be
                # run) is not.
                level = logging.INFO if running.dropped == "cancelled" else logging.ERROR
                self._log(running, level, f"{running.dropped}; outcome discarded")
                return
            self._record(running, message.finished)
        elif isinstance(message, _Wake):
            self._claim_now = True
        else:
            self._begin_stop(message)

    def _begin_stop(self, stop: _Stop) -> None:
        if self._stop is None:
            self._stop = stop
            self._want_changes.clear()
            busy = sum(1 for r in self._running.values() if r.outcome is None)
            if busy:
                self._grace_until = time.monotonic() + self.grace
                log.info(
                    "%s: no more claims; %d running job%s %s %gs to finish",
                    stop.reason,
                    busy,
                    "s" * (busy != 1),
                    "have" if busy != 1 else "has",
                    self.grace,
                )
        if self._grace_until is None and (self._settler.pending or self._outage.ongoing):
            self._grace_until = time.monotonic() + self.grace
        if stop.cold:
            self._cold = True
            self._grace_until = time.monotonic()

    def _end_grace(self) -> None:
        """At the end of the grace (or at a cold stop), release what still runs."""
        if self._grace_until is None or time.monotonic() < self._grace_until:
            return
        if self._cold:
            why = "second signal: stopping now" if self._signals > 1 else "cold stop requested"
        else:
            why = f"grace of {self.grace:g}s ended"
        log.info("worker %s stopping (%s) after %d jobs", self.worker_id, why, self.jobs_done)
        for running in list(self._running.values()):
            if running.outcome is not None:
                continue
            if running.dropped is not None:
                # Cancelled or its lease lost, and still running (a thread that cannot be
                # interrupted): nothing to write for it, and nothing to wait for.
                self._forget(running)
                continue
            self._leave_behind(running)
            running.release_why = why
            self._record(running, running.released())
        self._grace_until = None
        self._grace_ended = True

    def _forget(self, running: RunningJob) -> None:
        """Stop waiting for a dropped task that still runs: its thread is left to itself."""
        self._leave_behind(running)
        del self._running[running.job.id]
        self.jobs_done += 1

    def _time_out_overruns(self) -> None:
        now = time.monotonic()
        for running in list(self._running.values()):
            overran = now >= running.deadline and not running.call.is_async
            if overran and running.outcome is None and running.dropped is not None:
                # A dropped thread task past its timeout: as any overrun, its thread is
                # abandoned and the process restarts clean; there is no outcome to write.
                self._forget(running)
                self._log(
                    running,
                    logging.WARNING,
                    f"still running {running.job.timeout:g} s "
                    f"after its start ({running.dropped}); its thread is left behind",
                )
                if self.install_signal_handlers:
                    self._exit_code = TIMEOUT_EXIT_CODE
                    self._begin_stop(
                        _Stop("a task overran its timeout; exiting to restart clean", False)
                    )
                continue
            if now < running.deadline or not self._may_overrun(running):
                continue
            self._threads.abandon(running)
            self._record(running, running.timed_out())
            self._exit_code = TIMEOUT_EXIT_CODE if self.install_signal_handlers else 0
            self._log(running, logging.ERROR, f"timed out after {running.job.timeout:g} s")
            if self.install_signal_handlers:
                self._begin_stop(
                    _Stop("a task overran its timeout; exiting to restart clean", False)
                )

    @staticmethod
    def _may_overrun(running: RunningJob) -> bool:
        """Whether the loop must watch this job's timeout: a thread task still running for an
        outcome (an async task times itself out, with asyncio.timeout)."""
        return running.outcome is None and running.dropped is None and not running.call.is_async

    def _record(self, running: RunningJob, finished: Finished) -> None:
        self._settler.add(running, running.ended(finished))

    def _leave_behind(self, running: RunningJob) -> None:
        """Stop caring about a running task: cancel it if async, abandon its thread if not."""
        if running.call.is_async:
            running.drop("released")
        else:
            self._threads.abandon(running)

    def _drop(self, running: RunningJob, why: str) -> None:
        """The job's lease is gone (or it was cancelled): stop it; no outcome will be written."""
        self._log(running, logging.ERROR if why != "cancelled" else logging.WARNING, why)
        running.drop(why if why == "cancelled" else "lease lost")

    # -- settling and claiming -------------------------------------------------------------

    def _busy(self) -> int:
        """Jobs still running a task (not yet ended, dropped or left behind)."""
        return sum(1 for r in self._running.values() if r.outcome is None and r.dropped is None)

    def _free_slots(self) -> int:
        """Slots the next claim may fill: those whose job's outcome is known are free (the
        outcome is written with the claim that refills them)."""
        busy = sum(1 for r in self._running.values() if r.outcome is None)
        free = self.concurrency - busy
        if self.max_jobs is not None:
            free = min(free, self.max_jobs - self._jobs_started)
        return max(0, free)

    def _others_running(self) -> int:
        """Running jobs whose outcome could still join the pending batch."""
        return sum(1 for r in self._running.values() if r.outcome is None and r.dropped is None)

    def _settle_and_claim(self) -> None:
        """Write the pending outcomes when they are due, claiming for the free slots in the
        same transaction; with none pending, claim as soon as slots are free and jobs may be
        ready. Freed slots wait for their batch (at most the window): claiming at once for
        each one would cost a commit per job again."""
        claim = self._free_slots() if self._stop is None and not self._signals else 0
        claim_id = secrets.token_hex(8)
        if claim:
            # Should the answer be lost after the database committed, the next try finds
            # what this claim took by its id (see _recover_claims).
            self._unsure_claims.append(claim_id)
        if self._settler.pending:
            if self._settler.due_in(self._others_running()) != 0:
                if claim:
                    self._unsure_claims.pop()
                return
            written, claimed = self._settler.flush(claim, claim_id)
            for running, finished, answer in written:
                self._settled(running, finished, answer)
        elif claim and self._claim_now:
            claimed = self.queue.claim_many(
                self.worker_id, self.queues, self.lease, limit=claim, claim_id=claim_id
            )
        else:
            if claim:
                self._unsure_claims.pop()
            return
        if claim:
            self._unsure_claims.pop()
        if claim:
            self._claim_now = len(claimed) == claim
            if self._claim_now:
                self._want_changes.clear()
            else:
                self._want_changes.set()  # the waker tells us when more may be ready
        self._dispatch(claimed)

    def _dispatch(self, jobs: Sequence[Job]) -> None:
        """Start claimed jobs: plain calls each on a thread, async ones on the event loop."""
        on_the_loop = []
        for job in jobs:
            running = RunningJob(job, self.runner.call_for(job), self.queue.settings, self.queue)
            self._running[job.id] = running
            self._jobs_started += 1
            if self._signals or self._stop is not None:
                # Claimed with the last outcomes, but a stop came before it started: hand it
                # back untouched rather than start new work.
                running.release_why = self._stop_reason()
                self._record(running, running.released())
                continue
            log.debug("job %s queue=%s attempt=%d started", job.id, job.queue, job.attempts)
            if running.call.is_async:
                on_the_loop.append(running)
            else:
                self._threads.submit(running)
        if on_the_loop:
            self._loop.submit(on_the_loop)

    def _settled(self, running: RunningJob, finished: Finished, answer: Job | DurqError) -> None:
        """Log one written (or refused) outcome; the job no longer runs here."""
        self._running.pop(running.job.id, None)
        self.jobs_done += 1
        took = running.took
        completed_by_task = running.completed_in and isinstance(answer, LeaseLost)
        if completed_by_task and answer.state == JobState.SUCCEEDED:  # type: ignore[union-attr]
            self._log(running, logging.INFO, f"succeeded in {took:.3f}s (complete_in)")
            return
        if isinstance(answer, LeaseLost):
            self._log(running, logging.ERROR, f"lease lost; outcome discarded ({answer})")
            return
        if isinstance(answer, DurqError):
            self._log(running, logging.ERROR, f"outcome discarded ({answer})")
            return
        outcome, error = finished.outcome, finished.error or ""
        if outcome is Outcome.SUCCEEDED:
            self._log(running, logging.INFO, f"succeeded in {took:.3f}s")
        elif outcome is Outcome.RELEASED:
            why = running.release_why
            self._log(running, logging.WARNING, f"released after {took:.3f}s ({why})")
        elif outcome is Outcome.UNPROCESSABLE:
            self._log(
                running, logging.WARNING, f"unprocessable in {took:.3f}s: {_last_line(error)}"
            )
        elif answer.state is JobState.QUEUED:
            wait = max(answer.run_at.timestamp() - time.time(), 0.0)
            self._log(
                running,
                logging.WARNING,
                f"failed in {took:.3f}s, retry in {wait:.1f}s: {_last_line(error)}",
            )
        else:
            self._log(
                running,
                logging.WARNING,
                f"failed in {took:.3f}s, no attempts left, unprocessable: {_last_line(error)}",
            )

    def _finished_why(self) -> str | None:
        """Why the loop is done, once nothing runs and nothing waits to be written."""
        if self._gave_up_in_outage():
            # Stopping, and the database has been away past the grace: what is still
            # unwritten runs again once its lease expires (at-least-once holds).
            left = len(self._settler.pending)
            return f"{self._stop_reason()}; database unavailable, {left} outcomes unwritten"
        if self._running or self._settler.pending:
            return None
        if self._stop is not None:
            return self._stop.reason
        if self._signals:
            return self._stop_reason()
        if self.max_jobs is not None and self._jobs_started >= self.max_jobs:
            return f"max jobs {self.max_jobs} reached"
        if self.burst and not self._claim_now:
            return "burst: no job ready"
        return None

    def _gave_up_in_outage(self) -> bool:
        """Stopping, the grace is over, the database is still away and no task runs."""
        over = self._grace_ended or (self._grace_until is not None and not self._grace_left())
        return self._stop is not None and over and self._outage.ongoing and not self._busy()

    def _stop_reason(self) -> str:
        return self._stop.reason if self._stop else f"{name_of(self._last_signal)} received"

    # -- slots and the waker talk to the loop through the inbox ----------------------------

    def _slot_done(self, running: RunningJob, finished: Finished | None) -> None:
        self._inbox.put(_Done(running, finished))

    def _wake_on_changes(self) -> None:
        """The waker thread: while the loop wants more jobs, wait for the queue to change."""
        while not self._closed.is_set():
            self._want_changes.wait()
            if self._closed.is_set():
                return
            try:
                self._wait_for_change()
            except DurqError as exc:
                if self._closed.is_set():
                    return
                self._closed.wait(self._outage.failed("waiting for new jobs", exc))
            if self._want_changes.is_set():
                self._inbox.put(_WAKE)

    def _wait_for_change(self) -> None:
        """``wait_for_change`` up to ``idle_wait``, in slices, so that a stopping worker is
        not held up by a wait that nothing will end (a LISTEN on PostgreSQL): a slice that
        returns before its time is a change; one that runs out is only the next slice."""
        deadline = time.monotonic() + self.idle_wait
        while not self._closed.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            wait = min(_WAIT_SLICE, left)
            began = time.monotonic()
            self.queue.wait_for_change(wait)
            if time.monotonic() - began < wait * 0.9:
                return

    # -- the workers registry ----------------------------------------------------------------

    def _meet_predecessor(self) -> None:
        """Say what an earlier process with this worker id left behind: before the first
        claim (whose jobs would look like the predecessor's) and before this process's own
        registration replaces the earlier one's. Only a note: an unreachable database skips it.
        """
        try:
            said = predecessor.note(self.queue, self.worker_id, socket.gethostname(), os.getpid())
        except DurqError as exc:
            log.debug("worker %s: no word on an earlier process: %s", self.worker_id, exc)
            return
        if said is not None:
            log.warning("%s", said)
        try:
            self._register()  # listed before the first job it runs, not after
        except DurqError as exc:
            log.debug("worker %s: registering later: %s", self.worker_id, exc)

    def _register(self) -> None:
        self.queue.worker_heartbeat(
            self.worker_id, host=socket.gethostname(), pid=os.getpid(), queues=self.queues
        )
        self._next_registration = time.monotonic() + self._registry_interval

    def _registry_due(self) -> float:
        return max(0.0, self._next_registration - time.monotonic())

    def _keep_registered(self) -> None:
        if time.monotonic() >= self._next_registration:
            self._register()

    def _deregister(self) -> None:
        try:
            self.queue.worker_stopped(self.worker_id)
        except DurqError as exc:
            log.warning("worker %s: could not leave the registry: %s", self.worker_id, exc)

    def _log(self, running: RunningJob, level: int, what: str) -> None:
        self._log_job(running.job, level, what)

    @staticmethod
    def _log_job(job: Job, level: int, what: str) -> None:
        log.log(level, "job %s queue=%s attempt=%d %s", job.id, job.queue, job.attempts, what)


def _as_runner(runner: Runner | Handler) -> Runner:
    """An app (or any ``Runner``) as it is; a plain handler wrapped in a ``HandlerRunner``."""
    if callable(getattr(runner, "call_for", None)):
        return runner  # type: ignore[return-value]  # a Runner, by its call_for
    return HandlerRunner(runner)  # type: ignore[arg-type]  # a plain callable


def _configure_logging() -> None:
    # Only when nobody configured logging (on the root or a ``durq`` logger, as the CLI does):
    # an application embedding the worker keeps its own setup, and no line is written twice.
    if not log.hasHandlers():
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=_LOG_FORMAT)


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def _exit(code: int) -> NoReturn:
    # Log records are written and flushed as they are emitted; only the streams remain.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
