"""The handlers that the benchmark scripts' ``durq worker`` processes run (kept apart from the
scripts, so a worker imports nothing but durq and this small module)."""

from __future__ import annotations

import threading
import time
from typing import Any

import durq


def nap(job: durq.Job) -> dict[str, Any]:
    """Sleep ``payload["sleep"]`` seconds, as a task waiting on I/O; say which thread ran it."""
    time.sleep(job.payload["sleep"])
    return {"thread": threading.current_thread().name}
