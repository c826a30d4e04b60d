"""Real faults on a PostgreSQL server of the test's own: a restart in the middle of a drain,
backends terminated mid-drain and while idle, and PgBouncer in transaction and session mode.
The workers are never restarted by anyone: each outage must end with every job succeeded and
every worker still running."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import durq
from durq import JobState, Outcome
from pg_cluster import Bouncer, Cluster
from worker_support import Workers, finish, log_of, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.xdist_group("pg-faults")]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    made.start()
    yield made
    made.remove()


@pytest.fixture
def url(cluster: Cluster) -> str:
    return cluster.create_database(f"durq_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def started(url: str, python_env: dict[str, str]) -> Iterator[Workers]:
    env = dict(python_env)
    env["PYTHONPATH"] = f"{Path(__file__).parent}:{env['PYTHONPATH']}"
    workers = Workers(url, env)
    yield workers
    workers.kill_all()


def all_succeeded(q: durq.JobQueue, jobs: list[durq.Job]) -> bool:
    return all(q.get(j.id).state is JobState.SUCCEEDED for j in jobs)


def count_done(q: durq.JobQueue) -> int:
    return sum(e["succeeded"] for e in q.stats()["queues"].values())


def stop_all(procs: list[subprocess.Popen[str]]) -> list[str]:
    """SIGTERM every worker; each must still be running, and exit 0. Their logs."""
    for proc in procs:
        assert proc.poll() is None, "a worker exited during the outage"
        proc.send_signal(signal.SIGTERM)
    logs = []
    for proc in procs:
        code, err = finish(proc, timeout=60)
        assert code == 0, err
        logs.append(err)
    return logs


def each_job_succeeded_once(q: durq.JobQueue, jobs: list[durq.Job]) -> None:
    for job in jobs:
        history = [a.outcome for a in q.attempts(job.id)]
        assert history.count(Outcome.SUCCEEDED) == 1, history
        assert history[-1] is Outcome.SUCCEEDED


def test_workers_ride_out_a_server_restart_mid_drain(
    cluster: Cluster, url: str, started: Workers
) -> None:
    with durq.connect(url) as q:
        jobs = q.enqueue_many([{"seconds": 0.02} for _ in range(600)])
    procs = [
        started.start("--handler", "handlers:sleeps", "--concurrency", "4", "--lease", "10")
        for _ in range(2)
    ]
    with durq.connect(url) as q:
        wait_for(lambda: count_done(q) >= 100, "the drain to get going", timeout=60)
    cluster.stop()
    time.sleep(3)  # the workers keep trying meanwhile
    cluster.start()
    with durq.connect(url) as q:
        wait_for(lambda: all_succeeded(q, jobs), "the drain to finish", timeout=120)
        each_job_succeeded_once(q, jobs)
    logs = stop_all(procs)
    for log in logs:
        # Once when it starts and once when it ends, not once per try.
        assert log.count("the database is unavailable") == 1, log
        assert log.count("the database is back after") == 1, log


def test_an_outage_longer_than_the_lease_is_recovered_by_rescue(
    cluster: Cluster, url: str, started: Workers
) -> None:
    with durq.connect(url) as q:
        jobs = q.enqueue_many([{"seconds": 0.5} for _ in range(40)])
    procs = [
        started.start("--handler", "handlers:sleeps", "--concurrency", "4", "--lease", "2")
        for _ in range(2)
    ]
    with durq.connect(url) as q:
        wait_for(lambda: count_done(q) >= 4, "the drain to get going", timeout=60)
    cluster.stop()
    time.sleep(6)  # every lease held runs out
    cluster.start()
    with durq.connect(url) as q:
        wait_for(lambda: all_succeeded(q, jobs), "the drain to finish", timeout=120)
        each_job_succeeded_once(q, jobs)  # an outcome written late would show twice
    stop_all(procs)


def test_terminated_backends_mid_drain_and_while_idle(
    cluster: Cluster, url: str, started: Workers
) -> None:
    with durq.connect(url) as q:
        jobs = q.enqueue_many([{"seconds": 0.01} for _ in range(400)])
    procs = [started.start("--handler", "handlers:sleeps", "--concurrency", "4") for _ in range(2)]
    database = url.rsplit("/", 1)[1]
    with durq.connect(url) as q:
        wait_for(lambda: count_done(q) >= 50, "the drain to get going", timeout=60)
    for _ in range(3):  # the test's own sessions go too: it reconnects after each cut
        assert cluster.terminate_backends(database) > 0
        time.sleep(0.3)
    with durq.connect(url) as q:
        wait_for(lambda: all_succeeded(q, jobs), "the drain to finish", timeout=120)
    # Idle now: every connection of theirs (pooled, LISTEN) is cut again.
    time.sleep(1.5)
    assert cluster.terminate_backends(database) > 0
    with durq.connect(url) as q:
        later = q.enqueue_many([{"seconds": 0} for _ in range(10)])
        wait_for(lambda: all_succeeded(q, later), "the idle workers to take new jobs", 60)
        each_job_succeeded_once(q, jobs + later)
    stop_all(procs)


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_pgbouncer_drains_two_thousand_jobs(
    cluster: Cluster, url: str, mode: str, tmp_path: Path, python_env: dict[str, str]
) -> None:
    database = url.rsplit("/", 1)[1]
    bouncer = Bouncer(cluster, database, mode)
    try:
        env = dict(python_env)
        env["PYTHONPATH"] = f"{Path(__file__).parent}:{env['PYTHONPATH']}"
        if mode == "transaction":
            # LISTEN needs a session: idle workers listen on the server itself.
            env["DURQ_LISTEN_URL"] = url
        workers = Workers(bouncer.url, env)
        with durq.connect(bouncer.url) as q:  # the schema is made through the pooler
            jobs = []
            for chunk in range(20):
                jobs += q.enqueue_many([{"n": chunk * 100 + n} for n in range(100)])
            procs = [
                workers.start("--handler", "handlers:ok", "--concurrency", "8") for _ in range(2)
            ]
            wait_for(lambda: all_succeeded(q, jobs), "the drain through the pooler", timeout=180)
            # Idle workers still wake for a new job (LISTEN on its own URL, or by polling).
            late = q.enqueue({"n": "late"})
            wait_for(lambda: q.get(late.id).state is JobState.SUCCEEDED, "the late job", 60)
            each_job_succeeded_once(q, [*jobs[::97], late])
        for log in stop_all(procs):
            assert "prepared statement" not in log
    finally:
        workers.kill_all()
        bouncer.stop()


def test_a_worker_told_to_stop_during_an_outage_leaves_after_its_grace(
    cluster: Cluster, url: str, started: Workers
) -> None:
    with durq.connect(url) as q:
        jobs = q.enqueue_many([{"seconds": 0.2} for _ in range(400)])
    proc = started.start(
        "--handler", "handlers:sleeps", "--concurrency", "4", "--lease", "3", "--grace", "1"
    )
    with durq.connect(url) as q:
        wait_for(lambda: count_done(q) >= 8, "the drain to get going", timeout=60)
    cluster.stop()
    try:
        # Its tasks end, their outcomes wait in memory for a database that is away.
        wait_for(lambda: "the database is unavailable" in log_of(proc), "the outage")
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        code, log = finish(proc, timeout=30)  # it must not wait for the database
    finally:
        cluster.start()
    assert code == 0, log
    assert "database unavailable" in log and "outcomes unwritten" in log, log
    assert "error connecting in" not in log  # the pool's own noise, once per try
    # What it could not write runs again, once its lease has run out.
    again = started.start("--handler", "handlers:sleeps", "--concurrency", "8")
    with durq.connect(url) as q:
        wait_for(lambda: all_succeeded(q, jobs), "the drain to finish", timeout=120)
        each_job_succeeded_once(q, jobs)
    stop_all([again])


def test_a_long_outage_ends_for_the_worker_soon_after_the_server_is_back(
    cluster: Cluster, url: str, started: Workers
) -> None:
    proc = started.start("--handler", "handlers:sleeps", "--concurrency", "2")
    with durq.connect(url) as q:
        first = q.enqueue({"seconds": 0})
        wait_for(lambda: all_succeeded(q, [first]), "a first job")
    cluster.stop()
    time.sleep(35)  # long enough for a connection pool's own retries to back off far apart
    cluster.start()
    back = time.monotonic()
    with durq.connect(url) as q:
        job = q.enqueue({"seconds": 0})
        # A worker that retried only through its pool would wait for the pool's next try,
        # up to half a minute away; a fresh pool connects at the worker's next retry.
        wait_for(lambda: all_succeeded(q, [job]), "the job after the outage", timeout=60)
    took = time.monotonic() - back
    (log,) = stop_all([proc])
    assert took < 20, f"the worker took {took:.0f}s to notice the database was back\n{log}"
    assert log.count("the database is unavailable") == 1, log
    assert "error connecting in" not in log
