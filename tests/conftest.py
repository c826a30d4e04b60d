"""Fixtures shared by every test: a queue URL per backend, on real files / real servers."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import Callable, Generator, Iterator
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


# --- what `make test` runs without being told ---------------------------------------------------
# PostgreSQL tests use $DURQ_TEST_POSTGRES_URL, else a local server if one answers
# (pg_support.LOCAL); set the variable empty to leave them out. Browser tests need
# /usr/bin/chromium (tests/dashboard/test_browser.py). Tests skipped for want of either are
# counted at the end of the run, with the one command that runs them.
POSTGRES_ENV = "DURQ_TEST_POSTGRES_URL"
_found_postgres: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _found_postgres
    # Only the main process looks: xdist's workers start after it and inherit its environment.
    if hasattr(config, "workerinput") or POSTGRES_ENV in os.environ:
        return
    try:
        import pg_support
    except ImportError:  # no psycopg (a light install): the PostgreSQL tests skip
        return
    _found_postgres = pg_support.local_server()
    if _found_postgres:
        os.environ[POSTGRES_ENV] = _found_postgres


def _skip_reasons(terminalreporter: pytest.TerminalReporter) -> Iterator[str]:
    for report in terminalreporter.stats.get("skipped", []):
        # (path, line, "Skipped: why"); a list when it came from an xdist worker.
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, tuple | list) and len(longrepr) == 3:
            yield str(longrepr[2])


def _tests(n: int) -> str:
    return f"{n} test{'s' if n != 1 else ''}"


def _suite_lines(reasons: list[str]) -> list[str]:
    """What to say about the optional suites, given the reasons of every skipped test."""
    postgres = sum(POSTGRES_ENV in reason for reason in reasons)
    browser = sum("chromium" in reason.lower() for reason in reasons)
    lines = []
    if _found_postgres:
        lines.append(
            f"PostgreSQL tests use {_found_postgres}: found running ({POSTGRES_ENV} is"
            " unset; set it to use another server, or empty to leave them out)"
        )
    if postgres:
        lines += [
            f"{_tests(postgres)} skipped for want of PostgreSQL; to run them:",
            f"    {POSTGRES_ENV}=postgresql://user@host:5432/db make test",
        ]
    if browser:
        lines += [
            f"{_tests(browser)} skipped for want of Chromium (/usr/bin/chromium); to run them:",
            "    apt-get install -y chromium && make test",
        ]
    return lines


# A wrapper called first, so its lines come last: after pytest's short summary, just above
# the final counts, where someone who ran `make test` looks.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None]:
    try:
        return (yield)
    finally:
        lines = _suite_lines(list(_skip_reasons(terminalreporter)))
        if lines:
            terminalreporter.write_sep("=", "durq: optional suites")
            for line in lines:
                terminalreporter.write_line(line)
