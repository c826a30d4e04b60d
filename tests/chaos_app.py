"""The app the chaos test runs under kill -9: thread and async tasks that record each run
they finish, and a poison task that kills its own worker."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import durq

app = durq.App(name="chaos")


def _record(started: float) -> dict[str, Any]:
    """Note a finished run (job, attempt, pid, start, end) in this process's file."""
    job = durq.current_job()
    line = f"{job.id} {job.attempts} {os.getpid()} {started!r} {time.time()!r}\n"
    runs = Path(os.environ["DURQ_CHAOS_DIR"], f"runs-{os.getpid()}.txt")
    with runs.open("a") as out:
        out.write(line)
        out.flush()
    return {"pid": os.getpid(), "attempt": job.attempts}


@app.task(max_attempts=20)
def work(seconds: float) -> dict[str, Any]:
    started = time.time()
    time.sleep(seconds)
    return _record(started)


@app.task(max_attempts=20)
async def awork(seconds: float) -> dict[str, Any]:
    started = time.time()
    await asyncio.sleep(seconds)
    return _record(started)


@app.task(max_attempts=2)
def poison() -> None:
    """Kills its worker outright, as a segfault or the OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)
