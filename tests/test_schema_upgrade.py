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
