"""The procedure of docs/scaling.md, end to end through the real CLI: queued jobs move from
an SQLite file to PostgreSQL with ``durq export`` / ``durq import``, ids and all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import durq
from durq import JobState

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    import pg_support

    return pg_support.fresh_database(request)


def durq_cli(env: dict[str, str], *args: str, stdin: Path | None = None) -> str:
    with open(stdin or "/dev/null", "rb") as source:
        done = subprocess.run(
            [sys.executable, "-m", "durq", *args],
            env=env,
            stdin=source,
            capture_output=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def moved_fields(job: durq.Job) -> dict[str, object]:
    """What a move must keep: not ``updated_at`` (the import's own time) nor ``last_error``
    (``import_jobs`` keeps a job's attempts, not its history)."""
    out = job.to_dict()
    del out["updated_at"], out["last_error"]
    return out


def test_queued_jobs_move_from_sqlite_to_postgres(
    tmp_path: Path, pg_url: str, python_env: dict[str, str]
) -> None:
    sqlite_url = f"sqlite:///{tmp_path}/var-durq.db"
    with durq.connect(sqlite_url) as old:
        plain = old.enqueue({"account": "a", "amount": 5})
        urgent = old.enqueue({"n": [1.5, None, "é"]}, queue="mail", priority=7, max_attempts=2)
        later = old.enqueue({"n": 3}, delay=3600, timeout=12.5, dedupe_key="nightly")
        retried = old.enqueue({"n": 4})
        job = old.claim("old-worker", queues=["default"])
        assert job is not None and job.id == plain.id
        old.release(job)  # back to queued, attempt not counted
        done = old.enqueue({"n": 5}, queue="mail", priority=9)
        job = old.claim("old-worker", queues=["mail"])
        assert job is not None and job.id == done.id
        old.complete(job)  # finished jobs stay behind
        job = old.claim("old-worker", queues=["default"])
        while job is not None and job.id != retried.id:
            old.release(job)
            job = old.claim("old-worker", queues=["default"])
        assert job is not None
        old.fail(job, "boom", retry=True)  # queued again with one attempt used
        queued = {j.id: j for j in old.list_jobs(state="queued", limit=1000)}
    assert set(queued) == {plain.id, urgent.id, later.id, retried.id}
    assert queued[retried.id].attempts == 1

    exported = tmp_path / "jobs.jsonl"
    exported.write_text(durq_cli(python_env, "--db", sqlite_url, "export"))
    assert len(exported.read_text().splitlines()) == 4  # only queued jobs leave

    assert "imported 4 jobs" in durq_cli(python_env, "--db", pg_url, "import", stdin=exported)
    with durq.connect(pg_url) as new:
        arrived = {j.id: j for j in new.list_jobs(limit=1000)}
        assert {i: moved_fields(j) for i, j in arrived.items()} == {
            i: moved_fields(j) for i, j in queued.items()
        }
        assert all(j.state is JobState.QUEUED for j in arrived.values())
        assert new.stats()["queues"]["mail"]["queued"] == 1

    # Running it again adds nothing: a retried import is safe.
    again = durq_cli(python_env, "--db", pg_url, "import", stdin=exported)
    assert "imported 0 jobs (4 already present)" in again

    with durq.connect(pg_url) as new:
        # Workers on PostgreSQL take them in the same order: priority, then run_at.
        first = new.claim("new-worker")
        assert first is not None and first.id == urgent.id
        assert first.attempts == 1
        # A live job keeps its dedupe key on the new queue too.
        assert new.enqueue({"n": 99}, dedupe_key="nightly").id == later.id
