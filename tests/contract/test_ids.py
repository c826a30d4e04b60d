"""Ids as people type them: short unique starts (``short_ids``) that ``resolve_id`` takes
back, ambiguity and nonsense refused with one line; and ``create=False``, which refuses a
database that is not there instead of making it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import durq
from contract.conftest import all_jobs


def test_short_ids_are_unique_and_resolve_back(queue: durq.JobQueue) -> None:
    burst = queue.enqueue_many(list(range(40)))  # one millisecond: long shared starts
    lone = queue.enqueue("later")
    ids = [j.id for j in [*burst, lone]]
    short = queue.short_ids(ids)
    assert set(short) == set(ids)
    for job_id, start in short.items():
        assert job_id.startswith(start) and len(start) >= 8
        assert queue.resolve_id(start) == job_id
        assert queue.resolve_id(start.upper()) == job_id
        assert queue.resolve_id(f"  {job_id} ") == job_id
        if len(start) > 8:  # one character less would be ambiguous
            with pytest.raises(durq.InvalidJob, match="more than one job"):
                queue.resolve_id(start[:-1])
    assert queue.short_ids([]) == {}


def test_resolve_id_refuses_what_names_no_single_job(queue: durq.JobQueue) -> None:
    a, b = queue.enqueue_many(["a", "b"])
    before = all_jobs(queue)
    common = a.id[:8]
    with pytest.raises(durq.InvalidJob) as several:
        queue.resolve_id(common)
    assert str(several.value) == (
        f"{common} is the start of more than one job's id ({a.id}, {b.id}): give more of it"
    )
    with pytest.raises(durq.JobNotFound, match="no job's id starts ffff"):
        queue.resolve_id("ffff")
    with pytest.raises(durq.JobNotFound, match=f"no job {'f' * 8}-"):
        queue.resolve_id("ffffffff-ffff-7fff-bfff-ffffffffffff")
    for bad in ("abc", "xyz12345", "", "a" * 37, 1234):
        with pytest.raises(durq.InvalidJob, match="not a job id or the start of one"):
            queue.resolve_id(bad)  # type: ignore[arg-type]
    assert all_jobs(queue) == before


def test_create_false_refuses_a_missing_database_and_makes_nothing(
    queue_url: str, queue: durq.JobQueue, request: pytest.FixtureRequest
) -> None:
    queue.enqueue("there")
    with durq.connect(queue_url, create=False) as existing:
        assert [j.payload for j in existing.list_jobs()] == ["there"]
    if queue_url.startswith("sqlite:"):
        missing = queue_url.replace("durq.db", "mistyped.db")
        path = missing.removeprefix("sqlite:///")
        with pytest.raises(durq.NoDatabase, match=f"^no durq database at {re.escape(path)}$"):
            durq.connect(missing, create=False)
        assert not Path(path).exists()
    else:
        import pg_support

        empty = pg_support.empty_database(request)
        with pytest.raises(durq.NoDatabase, match=r"^no durq database at \S+$"):
            durq.connect(empty, create=False)
        assert pg_support.execute(empty, "SELECT to_regclass('durq_jobs')") == [(None,)]
