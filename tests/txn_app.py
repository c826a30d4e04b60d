"""The app the transaction tests run in real worker processes (``--app txn_app:app``).

Its tasks write an effect (a row in ``charges``) and complete their job in the same
transaction of their own connection to the queue's database (``durq.complete_in``). A test
steers them through ``$TXN_DIR``: on a job's first attempt a task can stop and wait at a
named point, announcing it with ``ready-<job id>`` and going on once ``go-<job id>`` exists,
so the test can kill or freeze the worker exactly there.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import app_db
import durq
from durq.worker import current_queue

app = durq.App(name="txn_app")

CHARGES = "CREATE TABLE charges (job_id TEXT NOT NULL, order_id INTEGER NOT NULL)"


class _RollBack(Exception):
    """Raised to roll the task's transaction back, and caught."""


def _pause(point: str) -> None:
    """Wait at ``point`` if the test asked for it ($TXN_PAUSE) on this job's first attempt."""
    job = durq.current_job()
    if os.environ.get("TXN_PAUSE") != point or job.attempts != 1:
        return
    folder = Path(os.environ["TXN_DIR"])
    (folder / f"ready-{job.id}").touch()
    deadline = time.monotonic() + 60
    while not (folder / f"go-{job.id}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def _url() -> str:
    queue = current_queue()
    assert queue is not None
    return queue.url


@app.task(retry=durq.RetryPolicy(base=0.1, cap=0.1, jitter=0.0), max_attempts=10)
def charge(order_id: int, then: str = "") -> dict[str, Any]:
    """Record the charge and complete the job in one transaction.

    ``then="raise"`` raises after ``complete_in``, inside the transaction (it rolls back, so
    the attempt fails and is retried); ``then="roll_back"`` rolls back and returns as if all
    went well (the worker fails the attempt all the same); ``then="raise_after_commit"``
    raises once the transaction has committed (the job stays succeeded). Both first time only.
    """
    job = durq.current_job()
    _pause("before_transaction")
    conn = app_db.connect(_url())
    try:
        with contextlib.suppress(_RollBack), app_db.Transaction(conn):
            conn.execute(
                app_db.marks(conn, "INSERT INTO charges (job_id, order_id) VALUES (?, ?)"),
                (job.id, order_id),
            )
            try:
                durq.complete_in(conn, {"charged": order_id, "attempt": job.attempts})
            except durq.LeaseLost:
                (Path(os.environ["TXN_DIR"]) / f"lost-{job.id}").touch()
                raise  # rolls the charge back with the transaction
            _pause("before_commit")
            if then == "raise" and job.attempts == 1:
                raise RuntimeError("failed after complete_in, before the commit")
            if then == "roll_back" and job.attempts == 1:
                raise _RollBack
    finally:
        conn.close()
    if then == "raise_after_commit":
        raise RuntimeError("failed after the commit")
    return {"ignored": "the job was completed in the transaction"}


@app.task
async def charge_async(order_id: int) -> None:
    """``charge`` on an async psycopg connection (PostgreSQL only)."""
    import psycopg

    job = durq.current_job()
    conn = await psycopg.AsyncConnection.connect(_url(), autocommit=True)
    async with conn, conn.transaction():
        await conn.execute(
            "INSERT INTO charges (job_id, order_id) VALUES (%s, %s)", (job.id, order_id)
        )
        await durq.complete_in_async(conn, {"charged": order_id})


@app.task
def ship(order_id: int) -> dict[str, Any]:
    """A plain task, for the enqueue tests."""
    return {"shipped": order_id}
