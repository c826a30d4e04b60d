"""Checks on what callers hand in, shared by every backend so they all refuse the same things."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from datetime import datetime

from durq.codec import READ_DEPTH
from durq.errors import InvalidJob
from durq.job import Job, JobState
from durq.retry import RetryPolicy

QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def queue_name(name: object) -> str:
    if not isinstance(name, str) or not QUEUE_NAME.fullmatch(name):
        raise InvalidJob(f"bad queue name {name!r}: use 1 to 64 of A-Z a-z 0-9 _ . -")
    return name


def queue_names(names: Iterable[str] | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise InvalidJob("queues must be a list of queue names, not a string")
    checked = tuple(dict.fromkeys(queue_name(n) for n in names))
    if not checked:
        raise InvalidJob("queues must name at least one queue (or be None for all)")
    return checked


# Bounds that every backend can store and read back: a 64-bit integer, and a span of seconds
# that keeps every timestamp made from it (now + delay, now + lease) a valid datetime.
_INT64 = 2**63
MAX_SECONDS = 100 * 365 * 86400.0


def whole_number(value: object, what: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidJob(f"{what} must be a whole number, not {value!r}")
    if not -_INT64 <= value < _INT64:
        raise InvalidJob(f"{what} must fit in 64 bits, not {value}")
    if minimum is not None and value < minimum:
        raise InvalidJob(f"{what} must be at least {minimum}, not {value}")
    return value


def state(value: object) -> JobState:
    """A job state, given as a ``JobState`` or its name."""
    try:
        return JobState(value)  # type: ignore[arg-type]  # anything else is a ValueError
    except ValueError:
        names = ", ".join(s.value for s in JobState)
        raise InvalidJob(f"unknown state {value!r}: use one of {names}") from None


def payload_depth(value: object) -> int:
    """The ``max_payload_depth`` setting: 1 to the depth every reader can take."""
    depth = whole_number(value, "max_payload_depth", minimum=1)
    if depth > READ_DEPTH:
        raise InvalidJob(f"max_payload_depth must be at most {READ_DEPTH}, not {depth}")
    return depth


def page_limit(value: object) -> int:
    """How many jobs one page of ``list_jobs`` may hold: 1 to 1000."""
    limit = whole_number(value, "limit", minimum=1)
    if limit > 1000:
        raise InvalidJob(f"limit must be at most 1000, not {limit}")
    return limit


def seconds(value: object, what: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidJob(f"{what} must be a finite number of seconds, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise InvalidJob(f"{what} must be {bound} seconds, not {value}")
    if value > MAX_SECONDS:
        raise InvalidJob(f"{what} must be at most {MAX_SECONDS:.0f} seconds (100 years)")
    return float(value)


def job_id(value: object) -> str:
    """A job id from outside (an import): a UUID string, as durq makes them."""
    try:
        if isinstance(value, str) and str(uuid.UUID(value)) == value.lower():
            return value
    except ValueError:
        pass
    raise InvalidJob(f"job id must be a UUID string, not {value!r}")


MIN_ID_PREFIX = 4  # characters of an id that pick out a job (the CLI shows 8)
_ID_PREFIX = re.compile(rf"[0-9a-f-]{{{MIN_ID_PREFIX},36}}")


def id_prefix(value: object) -> str:
    """The start of a job id, as a person types it: 4 to 36 hex digits and dashes."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or not _ID_PREFIX.fullmatch(text):
        raise InvalidJob(
            f"{value!r} is not a job id or the start of one "
            f"({MIN_ID_PREFIX} to 36 hex digits and dashes)"
        )
    return text


def label(value: object, what: str) -> str:
    """A worker id or host name: a string of 1 to 255 characters."""
    if not isinstance(value, str) or not value or len(value) > 255 or "\x00" in value:
        raise InvalidJob(f"{what} must be a string of 1 to 255 characters, not {value!r}")
    return value


def worker(worker_id: object, host: object, pid: object, queues: Iterable[str] | None) -> None:
    """What a worker reports about itself to the registry."""
    label(worker_id, "worker_id")
    label(host, "host")
    whole_number(pid, "pid", minimum=0)
    queue_names(queues)


_CLAIM_ID = re.compile(r"[0-9a-f]{16}")


def claim_id(value: object) -> str:
    """A claim id: 16 lowercase hex digits (see ``JobQueue.claim_many``)."""
    if not isinstance(value, str) or not _CLAIM_ID.fullmatch(value):
        raise InvalidJob(f"claim_id must be 16 lowercase hex digits, not {value!r}")
    return value


def dedupe_key(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 255 or "\x00" in value:
        raise InvalidJob(f"dedupe_key must be a string of 1 to 255 characters, not {value!r}")
    return value


MAX_ERROR = 64 * 1024  # characters of an attempt's error text that are kept


def error_text(value: object) -> str:
    """An attempt's error as stored: text without NUL (no database stores it everywhere), and
    at most ``MAX_ERROR`` characters; a longer one keeps its end, where a traceback says what
    went wrong."""
    text = str(value).replace("\x00", "\ufffd")
    if len(text) <= MAX_ERROR:
        return text
    cut = len(text) - MAX_ERROR
    return f"[{cut} characters cut]\n" + text[cut:]


def job_options(
    queue: object, priority: object, delay: object, max_attempts: object, timeout: object
) -> None:
    """The options every enqueue takes; ``InvalidJob`` names the first bad one."""
    queue_name(queue)
    whole_number(priority, "priority")
    seconds(delay, "delay", allow_zero=True)
    whole_number(max_attempts, "max_attempts", minimum=1)
    seconds(timeout, "timeout", allow_zero=False)


def moment(value: object, what: str) -> datetime:
    """A point in time from outside: a timezone-aware ``datetime`` (naive ones are ambiguous)."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidJob(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value


def importable(job: Job) -> None:
    """What ``import_jobs`` takes: a queued job with a UUID id and valid options."""
    if job.state != JobState.QUEUED:  # a StrEnum: "queued" compares equal too
        raise InvalidJob(f"job {job.id} is {job.state}: only queued jobs can be imported")
    job_options(job.queue, job.priority, 0.0, job.max_attempts, job.timeout)
    job_id(job.id)
    whole_number(job.attempts, "attempts", minimum=0)
    dedupe_key(job.dedupe_key)
    if job.task is not None:
        label(job.task, "task")
    if job.retry is not None and not isinstance(job.retry, RetryPolicy):
        raise InvalidJob(f"retry must be a durq.RetryPolicy, not {job.retry!r}")
    moment(job.run_at, "run_at")
    moment(job.created_at, "created_at")


def claimed(job: object) -> Job:
    """The job handed to heartbeat/complete/fail/release: one that ``claim`` returned."""
    if not isinstance(job, Job):
        raise InvalidJob(f"expected a Job returned by claim, not {job!r}")
    return job


def duration_buckets(buckets: Iterable[object]) -> list[float]:
    """Histogram bucket bounds in seconds, sorted; infinity is allowed, NaN is not."""
    bounds = []
    for bound in buckets:
        if isinstance(bound, bool) or not isinstance(bound, int | float) or math.isnan(bound):
            raise InvalidJob(f"a duration bucket must be a number of seconds, not {bound!r}")
        bounds.append(float(bound))
    return sorted(bounds)


def claim_options(
    worker_id: object, queues: Iterable[str] | None, lease: object
) -> tuple[str, ...] | None:
    """What every claim takes; returns the queue names, checked and without repeats."""
    label(worker_id, "worker_id")
    checked = queue_names(queues)
    seconds(lease, "lease", allow_zero=False)
    return checked
