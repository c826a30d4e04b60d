"""What ``JobQueue``'s public methods hand to a backend's storage primitives, and what the
primitives report back. Every value in here has been checked already (see queue.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from durq.job import Job, JobState, Outcome
from durq.retry import RetryPolicy


@dataclasses.dataclass(slots=True)  # not frozen: one is made per enqueue, and a frozen
class NewJobs:  # dataclass's __init__ costs twice as much (object.__setattr__ per field)
    """The jobs of one enqueue call: their ids and encoded payloads, and the options they
    share. ``dedupe_key`` comes only with a single job. Backends only read it."""

    ids: Sequence[str]
    payloads: Sequence[str]  # JSON text
    queue: str
    priority: int
    delay: float  # seconds from the backend's clock's now to ``run_at``
    max_attempts: int
    timeout: float
    dedupe_key: str | None = None
    task: str | None = None
    retry: RetryPolicy | None = None  # the jobs' own backoff; None: the queue's


@dataclasses.dataclass(frozen=True, slots=True)
class Settlement:
    """How one attempt ended, to be written under the attempt's lease (fenced).

    ``outcome`` is ``SUCCEEDED`` (with ``result``, encoded JSON), ``FAILED`` (``error``; the
    job is queued again after ``backoff`` seconds while attempts are left, else it becomes
    unprocessable), ``UNPROCESSABLE`` (``error``; no retry) or ``RELEASED`` (queued again
    now, the attempt not counted).
    """

    job: Job
    outcome: Outcome
    result: str = "null"
    error: str | None = None
    backoff: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimRequest:
    """A checked claim: up to ``limit`` jobs of ``queues`` (``None``: all) for ``worker_id``."""

    worker_id: str
    queues: tuple[str, ...] | None
    lease: float
    limit: int = 1
    # Starts every lease token the claim hands out (then "." and 16 random hex digits), so
    # a claim whose answer was lost can be found again (JobQueue.recover_claims).
    claim_id: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class QueueCounts:
    """What ``stats()`` is made of, read in one snapshot."""

    paused: dict[str, bool]  # every registered queue
    counts: list[tuple[str, str, int]]  # (queue, state, number of jobs), zero counts left out
    oldest_ready: dict[str, float]  # queue -> the earliest run_at of its ready jobs (Unix s)
    workers: int  # live workers
    now: float  # the backend clock's now (Unix s), that ages are measured from


Changed = Job | JobState | None
"""What a primitive that changes one job reports: the job as it is after the change; or, when
the change was refused and nothing written, the state the job is in; or ``None``, no such job."""


class KeyHeld(Exception):
    """Raised by ``_resubmit``: a queued or running job holds this job's dedupe key."""
