"""A database made by an older durq is upgraded in place when a newer one connects: every
migration after its version runs, and its jobs, history and workers stay as they were. On
every backend, from schema version 1 (before tasks)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import durq
from durq.backends import postgres_connection, sqlite_connection
from durq.job import JobState

Execute = Callable[[str], None]

# A job and its attempt as version 1 stored them (times as each backend keeps them).
ROWS = {
    "sqlite": (
        "INSERT INTO durq_jobs VALUES ('0192f000-0000-7000-8000-000000000001', 'default', "
        "'{\"n\": 1}', 'queued', 0, 1700000000.0, 1, 5, 300.0, 'k', NULL, NULL, NULL, "
        "'boom', NULL, 1700000000.0, 1700000000.0)",
        "INSERT INTO durq_queues (name) VALUES ('default')",
        "INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at, finished_at, "
        "outcome, error) VALUES ('0192f000-0000-7000-8000-000000000001', 1, 'w', "
        "1700000000.0, 1700000001.0, 'failed', 'boom')",
    ),
    "postgres": (
        "INSERT INTO durq_jobs VALUES ('0192f000-0000-7000-8000-000000000001', 'default', "
        "'{\"n\": 1}', 'queued', 0, to_timestamp(1700000000), 1, 5, 300.0, 'k', NULL, NULL, "
        "NULL, 'boom', NULL, to_timestamp(1700000000), to_timestamp(1700000000))",
        "INSERT INTO durq_queues (name) VALUES ('default')",
        "INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at, finished_at, "
        "outcome, error) VALUES ('0192f000-0000-7000-8000-000000000001', 1, 'w', "
        "to_timestamp(1700000000), to_timestamp(1700000001), 'failed', 'boom')",
    ),
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def version_one(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database at schema version 1, with one job and its history; its URL."""
    if request.param == "sqlite":
        path = tmp_path / "old.db"
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("CREATE TABLE durq_schema (version INTEGER PRIMARY KEY, applied_at REAL)")
            for statement in sqlite_connection.statements(sqlite_connection.MIGRATIONS[0][1]):
                conn.execute(statement)
            conn.execute("INSERT INTO durq_schema VALUES (1, 0)")
            for statement in ROWS["sqlite"]:
                conn.execute(statement)
        return f"sqlite:///{path}"
    import pg_support

    url = pg_support.empty_database(request)
    pg_support.execute(
        url, "CREATE TABLE durq_schema (version integer PRIMARY KEY, applied_at timestamptz)"
    )
    pg_support.execute(url, postgres_connection.MIGRATIONS[0][1])
    pg_support.execute(url, "INSERT INTO durq_schema VALUES (1, now())")
    for statement in ROWS["postgres"]:
        pg_support.execute(url, statement)
    return url


def test_a_version_one_database_is_upgraded_in_place(version_one: str) -> None:
    with durq.connect(version_one) as q:
        old = q.get("0192f000-0000-7000-8000-000000000001")
        assert (old.state, old.payload, old.attempts, old.dedupe_key) == (
            JobState.QUEUED,
            {"n": 1},
            1,
            "k",
        )
        assert (old.task, old.retry, old.last_error) == (None, None, "boom")
        assert [a.outcome for a in q.attempts(old.id)] == ["failed"]
        # Tasks work on the upgraded database: the new columns and the periodic table.
        app = durq.App(version_one, name="upgraded")
        app.use_queue(q)

        @app.task
        def hello(name: str) -> str:
            return f"hello {name}"

        job = hello.enqueue("ada")
        assert q.list_jobs(task=hello.name) == [q.get(job.id)]
        claimed = q.claim("w", lease=60)
        assert claimed is not None and claimed.id == old.id
        assert q.complete(claimed, "done").state is JobState.SUCCEEDED
        # The indexes the upgrade replaced: finished jobs are listed and counted from theirs.
        assert q.list_jobs(state=JobState.SUCCEEDED) == [q.get(old.id)]
        assert q.stats()["queues"]["default"]["succeeded"] == 1


@pytest.mark.postgres
def test_a_running_attempt_moves_onto_its_job_at_version_four(
    request: pytest.FixtureRequest,
) -> None:
    # Version 4 writes an attempt's row when it ends; the running attempt lives on the job's
    # row. A job that was running when the database was upgraded keeps its attempt: its
    # history shows it unfinished, as it was, and a rescue ends it with its worker and start.
    import pg_support

    url = pg_support.empty_database(request)
    pg_support.execute(
        url, "CREATE TABLE durq_schema (version integer PRIMARY KEY, applied_at timestamptz)"
    )
    for version, script in postgres_connection.MIGRATIONS[:3]:
        pg_support.execute(url, script)
        pg_support.execute(url, f"INSERT INTO durq_schema VALUES ({version}, now())")
    job_id = "0192f000-0000-7000-8000-000000000002"
    pg_support.execute(
        url,
        "INSERT INTO durq_jobs (id, queue, payload, state, priority, run_at, attempts, "
        "max_attempts, timeout, worker_id, lease_expires_at, lease_token, created_at, "
        f"updated_at) VALUES ('{job_id}', 'default', '{{}}', 'running', 0, "
        "to_timestamp(1700000000), 2, 5, 300.0, 'w-old', now() - interval '1 minute', "
        "'0000000000000000.x', to_timestamp(1700000000), to_timestamp(1700000300))",
    )
    pg_support.execute(url, "INSERT INTO durq_queues (name) VALUES ('default')")
    pg_support.execute(
        url,
        "INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at, finished_at, "
        f"outcome, error) VALUES ('{job_id}', 1, 'w-first', to_timestamp(1700000000), "
        "to_timestamp(1700000001), 'failed', 'boom'), "
        f"('{job_id}', 2, 'w-old', to_timestamp(1700000200), NULL, NULL, NULL)",
    )

    with durq.connect(url) as q:
        first, running = q.attempts(job_id)
        assert (first.worker_id, first.outcome, first.error) == ("w-first", "failed", "boom")
        assert (running.attempt, running.worker_id, running.finished_at) == (2, "w-old", None)
        assert running.started_at.timestamp() == 1700000200
        assert pg_support.execute(url, "SELECT count(*) FROM durq_attempts") == [(1,)]
        # The lease ran out a minute ago: the next claim rescues the job and takes it.
        taken = q.claim("w-new")
        assert taken is not None and (taken.id, taken.attempts) == (job_id, 3)
        history = q.attempts(job_id)
    lost = history[1]
    assert (lost.attempt, lost.worker_id, lost.outcome) == (2, "w-old", "lost")
    assert lost.started_at.timestamp() == 1700000200
    assert (history[2].worker_id, history[2].finished_at) == ("w-new", None)
