"""Values from URLs and forms, checked strictly before they reach the queue.

``int()`` takes ``+5``, ``1_000`` and Arabic-Indic digits; the queue's own checks echo a bad
value whole. These accept only the plain spellings and name a bad value in short
(``limits.shorten``).
"""

from __future__ import annotations

import re

from durq.dashboard.limits import shorten
from durq.errors import InvalidJob, JobNotFound
from durq.job import JobState
from durq.validation import QUEUE_NAME

PAGE_SIZE = 50
MAX_LIMIT = 1000
# A job id as durq makes it: a UUID string (imports keep the case they came with).
JOB_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MAX_TASK = 255


def limit(value: str | None) -> int:
    """A page size: ``PAGE_SIZE`` when absent, else ASCII digits meaning 1 to ``MAX_LIMIT``."""
    if value is None or value == "":
        return PAGE_SIZE
    if not (value.isascii() and value.isdigit()):
        raise InvalidJob(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, not {shorten(value)!r}"
        )
    digits = value.lstrip("0")
    if len(digits) > len(str(MAX_LIMIT)) or int(digits or "0") > MAX_LIMIT:
        raise InvalidJob(f"limit must be at most {MAX_LIMIT}, not {shorten(value)}")
    if not digits:
        raise InvalidJob(f"limit must be at least 1, not {shorten(value)}")
    return int(digits)


def before(value: str | None) -> str | None:
    """A paging bound: absent, or a job id (a UUID string)."""
    if value is None or value == "":
        return None
    if not JOB_ID.fullmatch(value):
        raise InvalidJob(f"before must be a job id (a UUID string), not {shorten(value)!r}")
    return value


def job_id(value: str) -> str:
    """A job id from a path: anything that is not a UUID string names no job (404), and is
    answered without asking the database."""
    if not JOB_ID.fullmatch(value):
        raise JobNotFound(f"no job {shorten(value)}")
    return value


def state(value: str | None) -> str | None:
    """A job state filter: absent, or one of the state names."""
    if value is None or value == "":
        return None
    if value not in {s.value for s in JobState}:
        names = ", ".join(s.value for s in JobState)
        raise InvalidJob(f"unknown state {shorten(value)!r}: use one of {names}")
    return value


def queue_name(value: str | None) -> str | None:
    """A queue name: absent, or 1 to 64 of A-Z a-z 0-9 _ . - (``.`` and ``..`` included)."""
    if value is None or value == "":
        return None
    if not QUEUE_NAME.fullmatch(value):
        raise InvalidJob(f"bad queue name {shorten(value)!r}: use 1 to 64 of A-Z a-z 0-9 _ . -")
    return value


def task(value: str | None) -> str | None:
    """A task name filter: absent, or 1 to ``MAX_TASK`` characters without NUL."""
    if value is None or value == "":
        return None
    if len(value) > MAX_TASK or "\x00" in value:
        raise InvalidJob(
            f"task must be a string of 1 to {MAX_TASK} characters, not {shorten(value)!r}"
        )
    return value
