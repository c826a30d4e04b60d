"""Fixtures shared by every test: a queue URL per backend, on real files / real servers."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import durq
import worker_support

# Every backend the contract suite runs against. Adding a backend = one name here and a
# branch in ``queue_url``.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL naming a fresh, empty durq database of each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/durq.db"
    if request.param == "postgres":
        import pg_support  # imports psycopg, so only when a PostgreSQL test runs

        return pg_support.fresh_database(request)
    raise AssertionError(f"no fixture for backend {request.param}")


@pytest.fixture
def queue(queue_url: str) -> Iterator[durq.JobQueue]:
    q = durq.connect(queue_url)
    yield q
    q.close()


@pytest.fixture
def python_env(tmp_path: Path) -> dict[str, str]:
    """Environment for subprocesses running durq code from this checkout."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    return env


@pytest.fixture
def write_behind_durq(queue_url: str) -> Callable[[str, str, str], None]:
    """``write(job_id, column, text)``: store ``text`` in a JSON column of a job's row with
    plain SQL, as an older durq or a person at a SQL prompt might, bypassing every check."""

    def write(job_id: str, column: str, text: str) -> None:
        assert column in ("payload", "result")
        if queue_url.startswith("sqlite:"):
            path = queue_url.removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(path)) as conn, conn:
                conn.execute(f"UPDATE durq_jobs SET {column} = ? WHERE id = ?", (text, job_id))
        else:
            import pg_support

            pg_support.execute(
                queue_url,
                f"UPDATE durq_jobs SET {column} = %(text)s::json WHERE id = %(id)s",
                {"text": text, "id": job_id},
            )

    return write


@pytest.fixture
def workers(queue_url: str, python_env: dict[str, str]) -> Iterator[worker_support.Workers]:
    """Worker processes on the test's database, with tests/ importable (handlers, apps)."""
    env = dict(python_env)
    env["PYTHONPATH"] = os.pathsep.join((str(worker_support.TESTS), env["PYTHONPATH"]))
    started = worker_support.Workers(queue_url, env)
    yield started
    started.kill_all()
