"""A full disk: enqueue fails cleanly, nothing is corrupted, and the queue recovers.

SQLite-only: it needs the database file on a tiny filesystem of its own (a 1 MiB tmpfs,
mounted here, so the test needs root; it is skipped where mounting is not permitted).
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import durq
from durq import JobState


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def registered_queues(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM durq_queues")}
    finally:
        conn.close()


def test_a_full_disk_fails_enqueue_and_the_queue_recovers(tiny_disk: Path) -> None:
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\xff" * 256 * 1024)  # freed at the end to make room again
    path = tiny_disk / "durq.db"
    q = durq.connect(f"sqlite:///{path}")
    acknowledged = []
    with pytest.raises(durq.BackendError) as raised:
        for n in range(10_000):
            acknowledged.append(q.enqueue({"n": n, "pad": "x" * 8000}).id)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)
    assert len(acknowledged) > 10  # it did fill up with jobs, not fail at once
    assert isinstance(raised.value.__cause__, sqlite3.Error)

    # A first job for a new queue fails too; its queue must not be taken as registered.
    with pytest.raises(durq.BackendError):
        q.enqueue({"n": "new queue", "pad": "x" * 8000}, queue="late")

    # A worker keeps going on the full disk as far as it can; whatever it manages is whole.
    try:
        job = q.claim("w")
        if job is not None:
            q.complete(job, "done while full")
    except durq.BackendError:
        pass

    assert integrity(path) == "ok"
    for job_id in acknowledged:
        assert q.get(job_id).payload["pad"] == "x" * 8000
    assert {j.id for j in q.list_jobs(limit=1000)} == set(acknowledged)
    counts = q.stats()["queues"]["default"]
    assert sum(counts[state.value] for state in JobState) == len(acknowledged)

    # Free some room: the queue works again, on the same connection and on a new one.
    # (Only a little: the WAL is checkpointed every 1000 pages, more than this disk holds, so
    # it keeps growing into whatever is freed.)
    filler.unlink()
    more = q.enqueue({"n": "after"})
    late = q.enqueue({"n": "late"}, queue="late")
    assert registered_queues(path) == {"default", "late"}  # claim(queues=None) looks there
    job = q.claim("w")
    assert job is not None and job.id in acknowledged
    assert q.complete(job, "ok").state is JobState.SUCCEEDED
    assert q.get(more.id).state is JobState.QUEUED
    assert integrity(path) == "ok"
    with durq.connect(f"sqlite:///{path}") as fresh:
        assert fresh.get(job.id).result == "ok"
        assert len(fresh.list_jobs(limit=1000)) == len(acknowledged) + 2
        assert fresh.get(late.id).state is JobState.QUEUED
        another = fresh.claim("fresh")
        assert another is not None and another.id != job.id
        fresh.complete(another)
    q.close()
    assert integrity(path) == "ok"
