"""Helpers for the contract suite: every test here runs against each backend of ``queue_url``.

Tests talk to the queue only through ``durq.connect`` and the public ``JobQueue`` API, so a new
backend joins the suite with no change here.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import durq

PROCS = Path(__file__).with_name("_procs.py")


def all_jobs(q: durq.JobQueue) -> list[durq.Job]:
    """Every job, newest first, paging with ``before`` as a user would."""
    jobs: list[durq.Job] = []
    while True:
        page = q.list_jobs(limit=1000, before=jobs[-1].id if jobs else None)
        if not page:
            return jobs
        jobs.extend(page)


def snapshot(q: durq.JobQueue) -> tuple[Any, ...]:
    """What a queue holds, for "this call changed nothing" checks.

    ``oldest_queued_age`` grows with the clock, so only whether it is set is kept.
    """
    stats = q.stats()
    for entry in stats["queues"].values():
        entry["oldest_queued_age"] = entry["oldest_queued_age"] is not None
    jobs = all_jobs(q)
    history = {j.id: [a.to_dict() for a in q.attempts(j.id)] for j in jobs}
    return stats, [j.to_dict() for j in jobs], history


@pytest.fixture
def connect_queue(queue_url: str) -> Iterator[Callable[..., durq.JobQueue]]:
    """``connect_queue(**settings)``: another connection to the test's database, closed after."""
    opened: list[durq.JobQueue] = []

    def connect(**settings: Any) -> durq.JobQueue:
        q = durq.connect(queue_url, **settings)
        opened.append(q)
        return q

    yield connect
    for q in opened:
        q.close()


@pytest.fixture
def more_databases(
    queue_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], str]:
    """A function that makes another fresh, empty database of the test's backend and returns
    its URL, for tests that need many (the model test: one per example).

    Adding a backend = one branch here too.
    """
    if queue_url.startswith("sqlite:"):
        serial = itertools.count()
        return lambda: f"sqlite:///{tmp_path}/more-{next(serial)}.db"
    if queue_url.startswith("postgres"):
        import pg_support  # imports psycopg, so only when a PostgreSQL test runs

        return lambda: pg_support.fresh_database(request)
    raise AssertionError(f"no fixture for more databases like {queue_url}")


def start_proc(
    env: dict[str, str], *args: str, stdout: Any = subprocess.PIPE
) -> subprocess.Popen[str]:
    """Run one of the helper programs of ``_procs.py`` in a process of its own."""
    return subprocess.Popen(
        [sys.executable, str(PROCS), *args],
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
