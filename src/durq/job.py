"""The job model: ``Job``, its ``JobState``, the attempt history and the worker registry."""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime
from typing import Any

from durq.retry import RetryPolicy

JSON = Any
"""Any value ``json.dumps`` accepts without ``default=``: the type of payloads and results."""


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    UNPROCESSABLE = "unprocessable"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for the states no worker moves a job out of (only an admin: resubmit, or
        cancel for an unprocessable job)."""
        return self in FINISHED_STATES


FINISHED_STATES = frozenset({JobState.SUCCEEDED, JobState.UNPROCESSABLE, JobState.CANCELLED})
# A running job can be cancelled too: its lease ends at once, so whatever its worker reports
# later is refused (fencing), and the worker stops the task when it next renews its leases.
CANCELLABLE_STATES = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.UNPROCESSABLE})


class Outcome(enum.StrEnum):
    """How one attempt ended (``None`` while it runs)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the handler raised; retried if attempts are left
    UNPROCESSABLE = "unprocessable"  # failed with retry=False
    RELEASED = "released"  # handed back unfinished; the attempt does not count
    LOST = "lost"  # the lease expired: the worker died, hung or lost its disk
    CANCELLED = "cancelled"  # an admin cancelled the job while it ran


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _as_dict(obj: Any) -> dict[str, Any]:
    """Field names as keys, times as ISO 8601 UTC strings, enums as their values."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(obj):
        if field.metadata.get("json") is False:
            continue
        value = getattr(obj, field.name)
        if isinstance(value, datetime):
            value = _iso(value)
        elif isinstance(value, enum.Enum):
            value = value.value
        out[field.name] = value
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """One job as stored. Times are timezone-aware UTC datetimes."""

    id: str
    queue: str
    payload: JSON
    state: JobState
    priority: int
    run_at: datetime
    attempts: int
    max_attempts: int
    timeout: float
    dedupe_key: str | None
    worker_id: str | None
    lease_expires_at: datetime | None
    lease_token: str | None
    last_error: str | None
    task: str | None  # the name of the task that made the job (see durq.App), else None
    result: JSON
    created_at: datetime
    updated_at: datetime
    # The job's own backoff (its task's); None: the queue's. Left out of ``to_dict``: the
    # pinned JSON form has the fields above (``durq export`` adds it; see cli/transfer.py).
    retry: RetryPolicy | None = dataclasses.field(default=None, metadata={"json": False})

    def to_dict(self) -> dict[str, Any]:
        """The job as JSON-ready data: the keys of ``--json`` and the HTTP API."""
        return _as_dict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class Finished:
    """How a worker's attempt at ``job`` ended, for ``JobQueue.settle``.

    ``outcome``: ``SUCCEEDED`` with ``result``; ``FAILED`` with ``error`` (retried after the
    backoff while attempts are left, else unprocessable); ``UNPROCESSABLE`` with ``error``
    (no retry); ``RELEASED`` (handed back unfinished, the attempt not counted).
    """

    job: Job
    outcome: Outcome
    result: JSON = None
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt at a job, kept in its history."""

    job_id: str
    attempt: int
    worker_id: str
    started_at: datetime
    finished_at: datetime | None
    outcome: Outcome | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker process as it last reported itself."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    started_at: datetime
    last_seen_at: datetime
    current_job_id: str | None

    def to_dict(self) -> dict[str, Any]:
        out = _as_dict(self)
        out["queues"] = list(self.queues)
        return out
