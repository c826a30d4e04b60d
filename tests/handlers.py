"""Handlers the worker tests run in real worker processes (``--handler handlers:NAME``).

The tests put this directory on the worker's PYTHONPATH. A ``marker`` path in a payload is
written (with the worker's pid) when the handler starts, so a test knows the job is running
before it sends a signal.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import durq

not_callable = 42


def _mark(job: durq.Job) -> None:
    marker = job.payload.get("marker") if isinstance(job.payload, dict) else None
    if marker:
        Path(marker).write_text(str(os.getpid()))


def ok(job: durq.Job) -> dict[str, Any]:
    _mark(job)
    return {"payload": job.payload, "started": time.time(), "pid": os.getpid()}


def raises(job: durq.Job) -> None:
    _mark(job)
    raise ValueError(f"boom on attempt {job.attempts}")


def unprocessable(job: durq.Job) -> None:
    raise durq.Unprocessable("this job can never work")


def sleeps(job: durq.Job) -> dict[str, Any]:
    """Sleeps ``payload["seconds"]``: a long job, or one that overruns its timeout."""
    _mark(job)
    time.sleep(job.payload["seconds"])
    return {"slept": job.payload["seconds"], "pid": os.getpid()}


def crash_or_ok(job: durq.Job) -> dict[str, Any]:
    """With ``{"crash": true}`` kills its worker outright, as a segfault or the OOM killer
    would; any other job succeeds."""
    if isinstance(job.payload, dict) and job.payload.get("crash"):
        os._exit(13)
    return ok(job)


def bad_result(job: durq.Job) -> Any:
    return {1, 2, 3}  # a set is not JSON


def sleeps_or_ok(job: durq.Job) -> dict[str, Any]:
    """``sleeps`` for a payload with seconds; ``ok`` for any other."""
    if isinstance(job.payload, dict) and "seconds" in job.payload:
        return sleeps(job)
    return ok(job)
