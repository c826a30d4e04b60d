"""The app the task tests run in real worker processes (``--app task_app:app``).

Its database is the worker's ``--db``. Each task writes what it did into its result, so the
tests read the outcome from the queue, never from the worker's say-so.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import durq

app = durq.App(name="task_app")


@app.task(queue="email")
def send_email(to: str, subject: str = "") -> dict[str, Any]:
    return {"sent": to, "subject": subject, "pid": os.getpid()}


@app.task(queue="images", priority=3, max_attempts=2)
def resize(path: str, width: int) -> dict[str, Any]:
    return {"resized": path, "width": width, "pid": os.getpid()}


@app.task(name="billing.charge", queue="billing", timeout=30)
async def charge(order: int) -> dict[str, Any]:
    await asyncio.sleep(0)
    job = durq.current_job()
    return {"charged": order, "job": job.id, "attempt": job.attempts, "pid": os.getpid()}


@app.task(retry=durq.RetryPolicy(base=0.2, cap=0.2, jitter=0.0), max_attempts=3)
def flaky(fail_times: int) -> str:
    """Fails its first ``fail_times`` attempts."""
    if durq.current_job().attempts <= fail_times:
        raise ConnectionError(f"attempt {durq.current_job().attempts} could not connect")
    return "ok"


@app.task(retry_on=(ConnectionError,), max_attempts=5)
def picky(error: str) -> None:
    raise {"connection": ConnectionError, "value": ValueError}[error]("told to")


# A second app, for the periodic tests alone: its workers schedule a tick every second.
clock = durq.App(name="clock")


@clock.periodic(cron="* * * * * *")  # every second (a sixth field is seconds)
@clock.task(queue="ticks")
def tick() -> dict[str, Any]:
    job = durq.current_job()
    return {"key": job.dedupe_key, "pid": os.getpid(), "at": time.time()}
