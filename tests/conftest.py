"""Fixtures shared by every test: a queue URL per backend, on real files / real servers."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import durq

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
