"""SQLite on a full disk, for real: a small tmpfs of the test's own is filled up while workers
run. They wait and try again instead of exiting; as soon as space comes back the queue works
again and the database is intact. And a writer frozen while it holds the lock stalls no
worker for good."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import durq
from durq import JobState
from worker_support import Workers, finish, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 6 MiB tmpfs, mounted for the test (CI runs as root, as mount needs)."""
    where = Path(tempfile.mkdtemp(prefix="durq-tmpfs-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk test: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill(folder: Path) -> Path:
    """Fill the disk of ``folder`` to the last byte; the file that holds it all."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 4096, 1):  # big blocks, then the last few bytes
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def test_workers_wait_out_a_full_disk_and_carry_on(
    small_disk: Path, python_env: dict[str, str]
) -> None:
    url = f"sqlite:///{small_disk}/durq.db"
    with durq.connect(url) as q:
        jobs = q.enqueue_many([{"seconds": 0.01, "pad": "x" * 200} for _ in range(300)])
    env = {**python_env, "PYTHONPATH": f"{Path(__file__).parent}:{python_env['PYTHONPATH']}"}
    workers = Workers(url, env)
    try:
        procs = [
            workers.start("--handler", "handlers:sleeps", "--concurrency", "4") for _ in range(2)
        ]
        with durq.connect(url) as q:
            wait_for(
                lambda: q.stats()["queues"]["default"]["succeeded"] >= 30, "the drain to start"
            )
        filler = fill(small_disk)
        time.sleep(3)  # the workers hit the full disk again and again meanwhile
        assert all(p.poll() is None for p in procs), "a worker exited on the full disk"
        filler.unlink()  # space comes back
        with durq.connect(url) as q:
            wait_for(
                lambda: all(q.get(j.id).state is JobState.SUCCEEDED for j in jobs),
                "the drain to finish once space is back",
                timeout=120,
            )
        for proc in procs:
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
        logs = [finish(p, timeout=60) for p in procs]
        assert all(code == 0 for code, _ in logs), logs
        assert any("the database is unavailable" in log for _, log in logs), logs
    finally:
        workers.kill_all()
    with contextlib.closing(sqlite3.connect(small_disk / "durq.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_purge_gives_the_wal_back_on_a_full_disk(small_disk: Path) -> None:
    # A long read keeps every checkpoint from finishing, so the WAL grows with each write
    # until the disk is full. The operator frees a little room (a log file) and purges:
    # purge gives the WAL's space back first, then deletes, and the disk has room again.
    logs = small_disk / "app.log"
    logs.write_bytes(b"\0" * 512 * 1024)
    url = f"sqlite:///{small_disk}/durq.db"
    with durq.connect(url) as q:
        reader = sqlite3.connect(small_disk / "durq.db")
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM durq_jobs").fetchone()
        with pytest.raises(durq.BackendUnavailable, match="full"):
            for _ in range(10_000):
                q.enqueue({"pad": "y" * 2000})
                claimed = q.claim("w")
                assert claimed is not None
                q.complete(claimed, None)
        reader.rollback()
        reader.close()
        wal = small_disk / "durq.db-wal"
        grown = wal.stat().st_size
        logs.unlink()
        assert q.purge(timedelta(0)) > 0
        assert wal.stat().st_size < grown / 4  # the WAL's space is given back
        assert os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize > grown / 2
        fresh = q.enqueue({"after": "purge"})  # and the queue works again
        assert q.get(fresh.id).state is JobState.QUEUED
    with contextlib.closing(sqlite3.connect(small_disk / "durq.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_writer_frozen_on_the_lock_stalls_no_worker_for_good(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path}/durq.db"
    with durq.connect(url) as q:
        first = q.enqueue_many([{"seconds": 0} for _ in range(5)])
    env = {**python_env, "PYTHONPATH": f"{Path(__file__).parent}:{python_env['PYTHONPATH']}"}
    workers = Workers(url, env)
    try:
        proc = workers.start("--handler", "handlers:sleeps")
        with durq.connect(url) as q:
            wait_for(lambda: all(q.get(j.id).state is JobState.SUCCEEDED for j in first), "work")
            later = q.enqueue({"seconds": 0})
        frozen = sqlite3.connect(tmp_path / "durq.db", isolation_level=None)
        frozen.execute("BEGIN IMMEDIATE")  # holds the write lock past the busy timeout
        time.sleep(20)
        assert proc.poll() is None, "the worker exited while the lock was held"
        frozen.execute("ROLLBACK")
        frozen.close()
        with durq.connect(url) as q:
            wait_for(lambda: q.get(later.id).state is JobState.SUCCEEDED, "the job after", 60)
        proc.send_signal(signal.SIGTERM)
        code, log = finish(proc, timeout=60)
        assert code == 0, log
        assert log.count("the database is unavailable") == 1, log
    finally:
        workers.kill_all()
