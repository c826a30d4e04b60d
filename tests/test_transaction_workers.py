"""The application's own transactions with real worker processes, on both backends: a
waiting worker and a rolled-back or committed enqueue, a worker killed between the effect and
the commit, a worker frozen until its lease was taken, and tasks that complete their job in
their own transaction (tests/txn_app.py)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import app_db
import durq
import txn_app
from durq import JobState
from worker_support import Workers, finish, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def txn(queue_url: str, queue: durq.JobQueue, workers: Workers, tmp_path: Path) -> Path:
    """The ``charges`` table, txn_app bound to the test's queue, and $TXN_DIR for markers."""
    app_db.sql(queue_url, txn_app.CHARGES)
    txn_app.app.use_queue(queue)
    folder = tmp_path / "txn"
    folder.mkdir()
    workers.env["TXN_DIR"] = str(folder)
    return folder


@pytest.fixture
def app_conn(queue_url: str) -> Iterator[Any]:
    with closing(app_db.connect(queue_url)) as conn:
        yield conn


def charges(url: str) -> list[tuple[Any, ...]]:
    return app_db.sql(url, "SELECT job_id, order_id FROM charges ORDER BY job_id")


def stop(proc: Any) -> str:
    proc.send_signal(signal.SIGTERM)
    code, log = finish(proc)
    assert code == 0, log
    return log


def test_a_waiting_worker_runs_the_committed_job_and_never_sees_the_rolled_back_one(
    queue_url: str, queue: durq.JobQueue, workers: Workers, txn: Path, app_conn: Any
) -> None:
    worker = workers.start("--app", "txn_app:app", "--worker-id", "waiting")
    wait_for(lambda: len(queue.workers()) == 1, "the worker to start")

    with pytest.raises(RuntimeError), app_db.Transaction(app_conn):
        lost = txn_app.ship.configure(connection=app_conn).enqueue(1)
        raise RuntimeError("the order failed")
    with app_db.Transaction(app_conn):
        kept = txn_app.ship.configure(connection=app_conn).enqueue(2)

    wait_for(lambda: queue.get(kept.id).state is JobState.SUCCEEDED, "the committed job")
    log = stop(worker)
    assert queue.get(kept.id).result == {"shipped": 2}
    assert [j.id for j in queue.list_jobs()] == [kept.id]
    assert lost.id not in log and kept.id in log


def test_a_worker_killed_between_the_effect_and_the_commit_leaves_neither(
    queue_url: str, queue: durq.JobQueue, workers: Workers, txn: Path
) -> None:
    job = txn_app.charge.enqueue(7)
    workers.env["TXN_PAUSE"] = "before_commit"
    doomed = workers.start("--app", "txn_app:app", "--lease", "1", "--worker-id", "doomed")
    wait_for(lambda: (txn / f"ready-{job.id}").exists(), "the task to reach its commit")
    # The charge is written and the job completed, in a transaction not yet committed.
    doomed.send_signal(signal.SIGKILL)
    assert finish(doomed)[0] == -signal.SIGKILL

    assert charges(queue_url) == []
    stored = queue.get(job.id)
    assert (stored.state, stored.worker_id) == (JobState.RUNNING, "doomed")

    # The lease runs out, another worker rescues the job and runs it again, once.
    rescuer = workers.start("--app", "txn_app:app", "--worker-id", "rescuer")
    wait_for(lambda: queue.get(job.id).state is JobState.SUCCEEDED, "the rescued job")
    log = stop(rescuer)
    done = queue.get(job.id)
    assert (done.attempts, done.result) == (2, {"charged": 7, "attempt": 2})
    assert charges(queue_url) == [(job.id, 7)]
    attempts = queue.attempts(job.id)
    assert [(a.worker_id, a.outcome) for a in attempts] == [
        ("doomed", "lost"),
        ("rescuer", "succeeded"),
    ]
    assert "(complete_in)" in log and "lease lost" not in log


def test_a_worker_whose_lease_was_stolen_gets_lease_lost_and_rolls_back(
    queue_url: str, queue: durq.JobQueue, workers: Workers, txn: Path
) -> None:
    job = txn_app.charge.enqueue(8)
    workers.env["TXN_PAUSE"] = "before_transaction"
    frozen = workers.start("--app", "txn_app:app", "--lease", "1", "--worker-id", "frozen")
    wait_for(lambda: (txn / f"ready-{job.id}").exists(), "the task to start")

    frozen.send_signal(signal.SIGSTOP)  # a long pause: GC, swap, a stopped VM
    try:
        time.sleep(1.5)  # past its one-second lease, which it cannot renew
        thief = queue.claim("thief")
        assert thief is not None and thief.id == job.id
        (txn / f"go-{job.id}").touch()
    finally:
        frozen.send_signal(signal.SIGCONT)

    wait_for(lambda: (txn / f"lost-{job.id}").exists(), "the task's LeaseLost")
    log = stop(frozen)
    assert charges(queue_url) == []  # its charge rolled back with the failed completion
    now = queue.get(job.id)
    assert (now.state, now.worker_id, now.lease_token) == (
        JobState.RUNNING,
        "thief",
        thief.lease_token,
    )
    assert "lease lost" in log
    queue.complete(thief, "the thief's own outcome stands")
    assert queue.get(job.id).result == "the thief's own outcome stands"


@pytest.mark.parametrize(
    ("then", "attempts", "outcomes"),
    [
        ("", 1, ["succeeded"]),
        ("raise_after_commit", 1, ["succeeded"]),
        ("raise", 2, ["failed", "succeeded"]),
        ("roll_back", 2, ["failed", "succeeded"]),
    ],
)
def test_a_job_completed_in_the_task_transaction_is_written_once(
    queue_url: str,
    queue: durq.JobQueue,
    workers: Workers,
    txn: Path,
    then: str,
    attempts: int,
    outcomes: list[str],
) -> None:
    job = txn_app.charge.enqueue(9, then=then)
    worker = workers.start("--app", "txn_app:app")
    wait_for(lambda: queue.get(job.id).state is JobState.SUCCEEDED, "the job")
    log = stop(worker)

    done = queue.get(job.id)
    # The result is the one written in the transaction, not the task's return value.
    assert (done.attempts, done.result) == (attempts, {"charged": 9, "attempt": attempts})
    assert [a.outcome for a in queue.attempts(job.id)] == outcomes
    assert charges(queue_url) == [(job.id, 9)]
    assert "(complete_in)" in log and "lease lost" not in log
    first_error = queue.attempts(job.id)[0].error or ""
    if then == "raise":
        assert "failed after complete_in, before the commit" in first_error
    if then == "roll_back":
        assert first_error == (
            "durq.complete_in was called, but the transaction it wrote in did not commit"
        )


@pytest.mark.postgres
def test_an_async_task_completes_in_its_async_transaction(
    request: pytest.FixtureRequest, python_env: dict[str, str], tmp_path: Path
) -> None:
    import pg_support

    url = pg_support.fresh_database(request)
    app_db.sql(url, txn_app.CHARGES)
    env = dict(python_env, TXN_DIR=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join((str(Path(__file__).parent), env["PYTHONPATH"]))
    workers = Workers(url, env)
    with durq.connect(url) as queue:
        txn_app.app.use_queue(queue)
        try:
            jobs = [txn_app.charge_async.enqueue(n) for n in range(5)]
            worker = workers.start("--app", "txn_app:app")
            wait_for(
                lambda: all(queue.get(j.id).state is JobState.SUCCEEDED for j in jobs), "the jobs"
            )
            log = stop(worker)
            results = [queue.get(j.id).result for j in jobs]
        finally:
            workers.kill_all()
    assert sorted(charges(url)) == sorted((j.id, n) for n, j in enumerate(jobs))
    assert results == [{"charged": n} for n in range(5)]
    assert log.count("(complete_in)") == 5
