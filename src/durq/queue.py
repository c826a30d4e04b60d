"""``JobQueue``: the contract every backend implements. Its docstrings are the reference."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from durq.job import JSON, Attempt, Job, JobState, WorkerInfo
from durq.retry import RetryPolicy
from durq.validation import DEFAULT_MAX_PAYLOAD_BYTES

DEFAULT_LEASE = 30.0


@dataclasses.dataclass(frozen=True, slots=True)
class QueueSettings:
    """Tunables shared by every backend; ``durq.connect(url, **fields)`` sets them."""

    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES  # for payloads and results alike
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    # A worker that has not reported for this long is left out of ``workers()``.
    worker_stale_after: float = 60.0


class JobQueue(abc.ABC):
    """A durable job queue.

    Every method is atomic: it happens whole or not at all, and one that raises has changed
    nothing. Worker calls on a running job (``heartbeat``, ``complete``, ``fail``,
    ``release``) are fenced by the ``lease_token`` the claim handed out: a stale token raises
    ``LeaseLost`` and changes nothing. Errors are ``durq.DurqError`` subclasses only; a driver
    error is wrapped in ``BackendError`` with the original on ``__cause__``.

    A lease that has expired stays valid until a ``claim`` rescues the job: until then its
    holder may still heartbeat, complete, fail or release (no one else can hold the job).

    A queue object is safe to share between the threads of a process; each process (a forked
    child too) gets its own connection.
    """

    settings: QueueSettings

    # -- producers ---------------------------------------------------------------------------

    @abc.abstractmethod
    def enqueue(
        self,
        payload: JSON,
        *,
        queue: str = "default",
        priority: int = 0,
        delay: float = 0.0,
        max_attempts: int = 5,
        timeout: float = 300.0,
        dedupe_key: str | None = None,
    ) -> Job:
        """Store one job and return it, ``queued``; durable when this returns.

        ``delay`` seconds pass before it can be claimed. With a ``dedupe_key``, while a job
        of the same queue and key is ``queued`` or ``running`` that job is returned instead
        and nothing is added. Raises ``InvalidJob`` for a payload that is not JSON (NaN and
        Infinity included) or is larger than ``settings.max_payload_bytes`` encoded, a bad
        queue name, or a bad option.
        """

    @abc.abstractmethod
    def enqueue_many(
        self,
        payloads: Iterable[JSON],
        *,
        queue: str = "default",
        priority: int = 0,
        delay: float = 0.0,
        max_attempts: int = 5,
        timeout: float = 300.0,
    ) -> list[Job]:
        """Store one job per payload in one transaction: all of them, or (on error) none."""

    @abc.abstractmethod
    def import_jobs(self, jobs: Iterable[Job]) -> int:
        """Store jobs exported from another durq queue, keeping their ids, in one transaction.

        For moving queues between backends (``durq export`` / ``durq import``). Only
        ``queued`` jobs are taken (``InvalidJob`` otherwise); their attempts so far are kept.
        A job whose id is already stored, or whose dedupe key a live job holds, is skipped, so
        an import can safely be repeated. ``last_error`` and the attempt history stay behind.
        Returns how many were added.
        """

    # -- workers -----------------------------------------------------------------------------

    @abc.abstractmethod
    def claim(
        self, worker_id: str, queues: Sequence[str] | None = None, lease: float = DEFAULT_LEASE
    ) -> Job | None:
        """Take the next ready job for ``worker_id`` and return it ``running``, or ``None``.

        Considers ``queued`` jobs whose ``run_at`` has come, of ``queues`` (``None``: every
        queue) that are not paused; highest ``priority`` first, then earliest ``run_at``, then
        oldest. Atomic: no two callers get the same job. The claim starts an attempt (counted
        in ``attempts``), hands out a fresh ``lease_token`` and a lease of ``lease`` seconds.

        First it rescues running jobs of every queue whose lease has expired (their worker was
        lost), keeping their ``run_at``: the lost attempt counts, and a job with no attempts
        left becomes ``unprocessable`` with an error saying the worker was lost; the others are
        ``queued`` again.
        """

    @abc.abstractmethod
    def heartbeat(self, job: Job, lease: float = DEFAULT_LEASE) -> Job:
        """Renew ``job``'s lease to ``lease`` seconds from now. Fenced (``LeaseLost``)."""

    @abc.abstractmethod
    def complete(self, job: Job, result: JSON = None) -> Job:
        """Finish the attempt: the job becomes ``succeeded`` with ``result``. Fenced.

        ``InvalidJob`` if ``result`` is not JSON or too large (the job stays running).
        """

    @abc.abstractmethod
    def fail(self, job: Job, error: str, retry: bool = True) -> Job:
        """Record a failed attempt with ``error`` (a traceback). Fenced.

        With ``retry`` and attempts left the job is ``queued`` again after the backoff of
        ``settings.retry``; otherwise it becomes ``unprocessable``.
        """

    @abc.abstractmethod
    def release(self, job: Job) -> Job:
        """Hand the job back unfinished: ``queued``, ready now, the attempt not counted. Fenced."""

    def complete_and_claim(
        self,
        job: Job,
        result: JSON = None,
        *,
        worker_id: str,
        queues: Sequence[str] | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> tuple[Job, Job | None]:
        """``complete(job, result)`` then ``claim(...)``: the finished job and the next one.

        Backends that can do both in one transaction (one durable commit per job drained)
        override this. Arguments are checked before anything is written. If the backend
        itself fails (``BackendError``: disk full, connection lost), a one-transaction
        override leaves nothing done: the job is still running under the caller's lease,
        and when that lease runs out it is claimed and run again, as after a crash. The
        default made of two calls may leave the completion done and the claim not.
        """
        done = self.complete(job, result)
        return done, self.claim(worker_id, queues, lease)

    def fail_and_claim(
        self,
        job: Job,
        error: str,
        retry: bool = True,
        *,
        worker_id: str,
        queues: Sequence[str] | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> tuple[Job, Job | None]:
        """``fail(job, error, retry)`` then ``claim(...)``, as ``complete_and_claim``."""
        failed = self.fail(job, error, retry)
        return failed, self.claim(worker_id, queues, lease)

    @abc.abstractmethod
    def worker_heartbeat(
        self, worker_id: str, *, host: str, pid: int, queues: Sequence[str] | None
    ) -> None:
        """Register the worker, or note that it is still alive (see ``workers``)."""

    @abc.abstractmethod
    def worker_stopped(self, worker_id: str) -> None:
        """Remove the worker from the registry (it stopped cleanly)."""

    def wait_for_change(self, timeout: float) -> None:
        """Block until another connection may have changed the queue, or ``timeout`` passes.

        Idle workers call this between empty claims. A backend that can notice commits
        cheaply (SQLite's data version, PostgreSQL's NOTIFY) returns soon after one; this
        default only sleeps.
        """
        import time

        time.sleep(timeout)

    # -- admin -------------------------------------------------------------------------------

    @abc.abstractmethod
    def get(self, job_id: str) -> Job:
        """The job with this id; ``JobNotFound`` if there is none."""

    @abc.abstractmethod
    def list_jobs(
        self,
        state: JobState | str | None = None,
        queue: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Job]:
        """Up to ``limit`` jobs, newest first, optionally of one state and one queue.

        Keyset paging: pass the last id of a page as ``before`` to get the next page. Its cost
        does not grow with the page number. ``InvalidJob`` for an unknown state, bad queue
        name or a ``limit`` outside 1..1000.
        """

    @abc.abstractmethod
    def attempts(self, job_id: str) -> list[Attempt]:
        """The job's attempt history, oldest first; ``JobNotFound`` if there is no such job."""

    @abc.abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counts per queue: ``{"queues": {name: {state: n, ..., "paused": bool,
        "oldest_queued_age": seconds or None}}, "workers": n}``. Every state has a key.
        ``oldest_queued_age`` is how long the oldest ready ``queued`` job has waited."""

    @abc.abstractmethod
    def throughput(
        self, window: timedelta = timedelta(hours=1), step: timedelta = timedelta(minutes=1)
    ) -> list[tuple[datetime, dict[str, int]]]:
        """Attempts finished in the last ``window``, counted by outcome per ``step``.

        One entry per step, oldest first, empty steps included.
        """

    @abc.abstractmethod
    def attempt_durations(self, buckets: Sequence[float]) -> dict[str, tuple[list[int], float]]:
        """Finished attempts still in the history, by outcome: for each outcome the count of
        attempts that took at most ``buckets[i]`` seconds (cumulative, as Prometheus
        histograms count; the last entry counts them all) and the sum of their durations.

        For ``/metrics``. One scan of the history: purge makes the totals go down again, which
        Prometheus reads as a counter reset.
        """

    @abc.abstractmethod
    def resubmit(self, job_id: str) -> Job:
        """Queue a finished (``succeeded``, ``unprocessable``, ``cancelled``) job again, ready
        now, with its attempts reset to 0. ``InvalidState`` otherwise, or when a live job holds
        the same dedupe key."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> Job:
        """Cancel a ``queued`` or ``unprocessable`` job; ``InvalidState`` otherwise."""

    @abc.abstractmethod
    def resubmit_all(self, state: JobState | str, queue: str | None = None) -> int:
        """``resubmit`` every job in ``state`` (a finished state), optionally of one queue.

        Works in bounded batches, each its own transaction; returns how many were resubmitted.
        Jobs that a live job's dedupe key blocks are left as they are.
        """

    @abc.abstractmethod
    def cancel_all(self, state: JobState | str, queue: str | None = None) -> int:
        """``cancel`` every job in ``state`` (``queued`` or ``unprocessable``), in batches."""

    @abc.abstractmethod
    def delete(self, job_id: str) -> None:
        """Delete a finished job and its history; ``InvalidState`` for a queued or running one."""

    @abc.abstractmethod
    def purge(self, older_than: timedelta, states: Iterable[JobState | str] | None = None) -> int:
        """Delete finished jobs last updated more than ``older_than`` ago, in bounded batches
        (each its own short transaction, so workers are never blocked for long); ``states``
        narrows which finished states (default: all three). Returns how many were deleted."""

    @abc.abstractmethod
    def pause(self, queue: str) -> None:
        """Stop claims from ``queue``; its jobs stay as they are. Enqueue still works."""

    @abc.abstractmethod
    def resume(self, queue: str) -> None:
        """Let workers claim from ``queue`` again."""

    @abc.abstractmethod
    def workers(self) -> list[WorkerInfo]:
        """Workers seen within ``settings.worker_stale_after`` seconds, each with the job it
        is running, if any."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close this process's connection. The object must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
