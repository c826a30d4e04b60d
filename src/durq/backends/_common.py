"""Rows to objects, shared by every backend so a ``Job`` reads the same from each.

Each backend selects its rows in the same column order (``durq_jobs``'s ``SELECT *``, and the
attempt and worker columns below) and hands its clock's representation of time to
``moment`` (SQLite stores Unix seconds; PostgreSQL returns datetimes). Payloads, results and
worker queue lists arrive as JSON text and are decoded by ``durq.codec``, which never lets a
stored row crash a reader.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from durq import codec
from durq.errors import InvalidJob
from durq.job import Attempt, Job, JobState, Outcome, WorkerInfo
from durq.retry import RetryPolicy

Moment = Callable[[Any], datetime]


class KnownQueues:
    """The queues this process has registered in ``durq_queues``, so producers skip writing
    the registry row again (queues are never deleted).

    A backend asks ``unknown`` inside its transaction, registers those, and calls
    ``remember`` only after COMMIT: remembered earlier, a registration that then rolled back
    would let another thread skip its own and leave a job in a queue that claims, which read
    the registry, never look at.
    """

    def __init__(self) -> None:
        self._known: set[str] = set()

    def knows(self, queue: str) -> bool:
        return queue in self._known

    def unknown(self, queues: set[str]) -> list[str]:
        return sorted(queues - self._known)

    def remember(self, queues: list[str]) -> None:
        self._known.update(queues)


_STATES = {state.value: state for state in JobState}  # a dict lookup; JobState() is slower
_OUTCOMES = {outcome.value: outcome for outcome in Outcome}


def unix_time(value: float) -> datetime:
    """A ``moment`` for backends that store Unix seconds."""
    return datetime.fromtimestamp(value, UTC)  # a keyword argument costs a third more


def as_is(value: datetime) -> datetime:
    """A ``moment`` for backends whose driver returns aware datetimes already."""
    return value


def job_from_row(row: Sequence[Any], moment: Moment) -> Job:
    """A ``durq_jobs`` row (``SELECT *`` column order) as a ``Job``, built through the slot
    setters (see ``_SET``): a claim builds one per job, and this halves what that costs."""
    run_at, lease_expires_at, result = row[5], row[11], row[14]
    created_at, updated_at, retry_base = row[15], row[16], row[18]
    made = moment(run_at)
    # A job that never waited has one time in three columns: convert it once.
    created = made if created_at == run_at else moment(created_at)
    return new_job(
        (
            row[0],
            row[1],
            codec.decode(row[2]),
            _STATES[row[3]],
            row[4],
            made,
            row[6],
            row[7],
            row[8],
            row[9],
            row[10],
            None if lease_expires_at is None else moment(lease_expires_at),
            row[12],
            row[13],
            row[17],
            None if result is None or result == "null" else codec.decode(result),
            created,
            created if updated_at == created_at else moment(updated_at),
            None if retry_base is None else _policy(retry_base, row[19], row[20]),
        )
    )


def bulk_finder(state: JobState, queue: str | None) -> str:
    """The named query that finds the next batch of ``state``'s jobs for a bulk action (each
    backend's SQL has one by each name). Queued and running jobs are taken from the front of
    their partial index with no cursor, since the action moves every job it takes out of it;
    finished jobs are paged by id."""
    if state is JobState.QUEUED:
        return "ids_queued" if queue is None else "ids_queued_in_queue"
    if state is JobState.RUNNING:
        return "ids_running"
    return "ids_finished"


def _policy(base: float, cap: float, jitter: float) -> RetryPolicy | None:
    try:
        return RetryPolicy(base, cap, jitter)
    except InvalidJob:
        return None  # a row written by hand: the queue's policy applies


def retry_columns(policy: RetryPolicy | None) -> dict[str, float | None]:
    """The ``retry_base``, ``retry_cap`` and ``retry_jitter`` columns as stored, in that
    order: NULL without a policy."""
    if policy is None:
        return {"retry_base": None, "retry_cap": None, "retry_jitter": None}
    return {"retry_base": policy.base, "retry_cap": policy.cap, "retry_jitter": policy.jitter}


# Each field's slot setter: Job is a frozen dataclass with slots, and its generated __init__
# (keyword arguments, object.__setattr__ per field) costs more than the row's insert does
# for a batch of a thousand new jobs.
_SET = {name: getattr(Job, name).__set__ for name in Job.__slots__}
SETTERS = [_SET[name] for name in Job.__slots__]  # in field order
_SET_ID, _SET_PAYLOAD = _SET["id"], _SET["payload"]
_ID, _PAYLOAD = Job.__slots__.index("id"), Job.__slots__.index("payload")  # field positions
# The slots' own getters skip a LazyJob's __getattr__: a job an enqueue returned must have
# been read (any field) before one of these reads it.
_GETTERS = [getattr(Job, name).__get__ for name in Job.__slots__]
_SET_RESULT, _SET_UPDATED_AT = _SET["result"], _SET["updated_at"]
_COMPLETION = [
    (_SET["state"], JobState.SUCCEEDED),
    (_SET["worker_id"], None),
    (_SET["lease_expires_at"], None),
    (_SET["lease_token"], None),
]
_new = object.__new__


def _job_maker() -> Callable[[Sequence[Any]], Job]:
    """``new_job``: a ``Job`` from all its fields in declaration order, built through the slot
    setters: the same object ``Job(...)`` would build, for less than its keyword arguments
    cost (a claim makes one per job, an enqueue one). The loop over the setters is written
    out, one line a field, as dataclasses writes ``__init__``: that takes a third off the
    loop's time, and, made from ``Job.__slots__``, it follows the class."""
    count = len(SETTERS)
    lines = [
        "def new_job(fields):",
        f"    if len(fields) != {count}:",
        f"        raise ValueError(f'a Job has {count} fields, not {{len(fields)}}')",
        "    job = _new(Job)",
        *(f"    set_{i}(job, fields[{i}])" for i in range(count)),
        "    return job",
    ]
    namespace: dict[str, Any] = {"_new": _new, "Job": Job}
    namespace.update((f"set_{i}", set_field) for i, set_field in enumerate(SETTERS))
    exec("\n".join(lines), namespace)
    made: Callable[[Sequence[Any]], Job] = namespace["new_job"]
    made.__doc__ = _job_maker.__doc__
    return made


new_job = _job_maker()


def new_jobs(ids: Sequence[str], payloads: Sequence[Any], shared: Sequence[Any]) -> list[Job]:
    """Jobs that differ only in id and payload (an enqueue's): ``shared`` holds every field
    in declaration order, with anything in the id's and the payload's places. One job is
    built from one tuple; a batch sets the shared fields of each job from pairs made once."""
    if len(ids) == 1:
        fields = list(shared)
        fields[_ID], fields[_PAYLOAD] = ids[0], payloads[0]
        return [new_job(fields)]
    rest = [
        (set_field, value)
        for i, (set_field, value) in enumerate(zip(SETTERS, shared, strict=True))
        if i not in (_ID, _PAYLOAD)
    ]
    jobs = []
    for job_id, payload in zip(ids, payloads, strict=True):
        job = _new(Job)
        _SET_ID(job, job_id)
        _SET_PAYLOAD(job, payload)
        for set_field, value in rest:
            set_field(job, value)
        jobs.append(job)
    return jobs


def completed(job: Job, result: Any, at: datetime) -> Job:
    """``job`` as its completion at ``at`` left it, without reading it back (copied through
    the slot setters: a quarter of what ``dataclasses.replace`` costs)."""
    done = _new(Job)
    for set_field, get_field in zip(SETTERS, _GETTERS, strict=True):
        set_field(done, get_field(job))
    for set_field, value in _COMPLETION:
        set_field(done, value)
    _SET_RESULT(done, result)
    _SET_UPDATED_AT(done, at)
    return done


ATTEMPT_COLUMNS = "job_id, attempt, worker_id, started_at, finished_at, outcome, error"


def attempt_from_row(row: Sequence[Any], moment: Moment) -> Attempt:
    """A ``durq_attempts`` row selected as ``ATTEMPT_COLUMNS``."""
    finished_at, outcome = row[4], row[5]
    return Attempt(
        job_id=row[0],
        attempt=row[1],
        worker_id=row[2],
        started_at=moment(row[3]),
        finished_at=None if finished_at is None else moment(finished_at),
        outcome=None if outcome is None else _OUTCOMES[outcome],
        error=row[6],
    )


def worker_from_row(row: Sequence[Any], moment: Moment) -> WorkerInfo:
    """A worker row: id, host, pid, queues (a JSON list, or NULL for every queue), started,
    last seen, and the id of a job it runs (or NULL)."""
    queues = row[3]
    return WorkerInfo(
        id=row[0],
        host=row[1],
        pid=row[2],
        queues=() if queues is None else tuple(json.loads(queues)),
        started_at=moment(row[4]),
        last_seen_at=moment(row[5]),
        current_job_id=row[6],
    )
