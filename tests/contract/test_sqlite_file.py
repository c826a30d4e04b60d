"""The SQLite backend's file handling: URLs, refusing files it does not own, migrations.

SQLite-only by nature, so these tests are not parametrised over backends.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from importlib import resources
from pathlib import Path

import pytest

import durq
from durq.backends import sqlite as sqlite_backend
from durq.backends import sqlite_connection


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in folder.iterdir() if p.is_file()}


def refused_untouched(path: Path, *expected: str) -> str:
    """Connecting to ``path`` raises ``BackendError`` naming it, and nothing in its folder
    changes: not the file, and no journal or WAL appears beside it."""
    before = listing(path.parent)
    with pytest.raises(durq.BackendError) as raised:
        durq.connect(f"sqlite:///{path}")
    message = str(raised.value)
    assert str(path) in message and "\n" not in message
    for word in expected:
        assert word in message
    assert listing(path.parent) == before
    return message


def test_relative_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with durq.connect("sqlite:///relative.db") as q:
        job = q.enqueue({"n": 1})
    assert (tmp_path / "relative.db").is_file()
    with durq.connect(f"sqlite:///{tmp_path}/relative.db") as q:
        assert q.get(job.id).payload == {"n": 1}


def test_absolute_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "abs"
    folder.mkdir()
    url = f"sqlite:///{folder}/path.db"
    assert url.startswith("sqlite:////")
    with durq.connect(url) as q:
        job = q.enqueue("x")
    assert (folder / "path.db").is_file()
    assert not (tmp_path / "path.db").exists()
    with durq.connect(url) as q:
        assert q.get(job.id).payload == "x"


def test_durq_url_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DURQ_URL", f"sqlite:///{tmp_path}/from-env.db")
    with durq.connect() as q:
        q.enqueue("x")
    assert (tmp_path / "from-env.db").is_file()
    monkeypatch.delenv("DURQ_URL")
    with durq.connect() as q:
        q.enqueue("y")
    assert (tmp_path / "durq.db").is_file()


def test_synchronous_normal_is_an_opt_in(tmp_path: Path) -> None:
    path = tmp_path / "fast.db"
    with durq.connect(f"sqlite:///{path}?synchronous=normal") as q:
        job = q.enqueue("x")
        assert isinstance(q, sqlite_backend.SQLiteQueue)
        # 1 = NORMAL, 2 = FULL (https://sqlite.org/pragma.html#pragma_synchronous)
        assert q.db.connection().execute("PRAGMA synchronous").fetchone()[0] == 1
    with durq.connect(f"sqlite:///{path}") as q:
        assert q.get(job.id).payload == "x"
        assert isinstance(q, sqlite_backend.SQLiteQueue)
        assert q.db.connection().execute("PRAGMA synchronous").fetchone()[0] == 2
        assert q.db.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_connection_that_claims_checkpoints_less_often(tmp_path: Path) -> None:
    def checkpoint_pages(q: durq.JobQueue) -> int:
        assert isinstance(q, sqlite_backend.SQLiteQueue)
        pages: int = q.db.connection().execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        return pages

    url = f"sqlite:///{tmp_path / 'q.db'}"
    with durq.connect(url) as producer, durq.connect(url) as worker:
        producer.enqueue("x")
        worker.claim("w1")
        assert checkpoint_pages(producer) == sqlite_connection.WAL_CHECKPOINT_PAGES == 1000
        assert checkpoint_pages(worker) == sqlite_connection.WORKER_CHECKPOINT_PAGES == 4000
        worker.settle([], worker_id="w1", claim=1)  # a settle's claim keeps it so
        assert checkpoint_pages(worker) == 4000


@pytest.mark.parametrize(
    "query", ["?synchronous=off", "?synchronous=", "?journal_mode=delete", "?sync=normal"]
)
def test_a_bad_url_option_is_refused(tmp_path: Path, query: str) -> None:
    with pytest.raises(durq.BackendError) as raised:
        durq.connect(f"sqlite:///{tmp_path}/x.db{query}")
    assert "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["sqlite://", "sqlite://relative.db", "mysql:///x.db", "x.db"])
def test_a_bad_url_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(durq.BackendError):
        durq.connect(url)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "durq.db"
    with pytest.raises(durq.BackendError, match=re.escape(str(path))):
        durq.connect(f"sqlite:///{path}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "content",
    [b"hello, this is a text file\n" * 100, b"SQLite format 2\x00" + b"\x00" * 4000, b"\x00"],
    ids=["text", "almost-sqlite", "one-byte"],
)
def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    refused_untouched(path, "not an SQLite database")


def test_an_sqlite_file_that_is_not_durqs_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)")
        conn.execute("INSERT INTO accounts VALUES (1, 100)")
    conn.close()
    refused_untouched(path, "not a durq database")


def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "durq.db"
    with durq.connect(f"sqlite:///{path}") as q:
        job = q.enqueue("keep me")
    newer = sqlite_connection.SCHEMA_VERSION + 1
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO durq_schema VALUES (?, 0)", (newer,))
    conn.close()
    message = refused_untouched(path, str(newer), "newer")
    assert "upgrade" in message
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM durq_schema WHERE version = ?", (newer,))
    conn.close()
    with durq.connect(f"sqlite:///{path}") as q:
        assert q.get(job.id).payload == "keep me"


def test_schema_version_is_the_last_migration(tmp_path: Path) -> None:
    folder = resources.files("durq.backends").joinpath("migrations", "sqlite")
    numbers = sorted(
        int(m.group(1))
        for entry in folder.iterdir()
        if (m := re.fullmatch(r"(\d{4})_\w+\.sql", entry.name))
    )
    assert numbers == list(range(1, len(numbers) + 1))
    assert numbers[-1] == sqlite_connection.SCHEMA_VERSION
    path = tmp_path / "durq.db"
    durq.connect(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    try:
        versions = [v for (v,) in conn.execute("SELECT version FROM durq_schema ORDER BY 1")]
    finally:
        conn.close()
    assert versions == numbers


def test_connecting_again_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "durq.db"
    with durq.connect(f"sqlite:///{path}") as q:
        job = q.enqueue("x")
    with durq.connect(f"sqlite:///{path}") as q:
        assert q.get(job.id).payload == "x"
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM durq_schema").fetchone()[0] == len(
            sqlite_connection.MIGRATIONS
        )
    finally:
        conn.close()


def test_an_empty_file_becomes_a_durq_database(tmp_path: Path) -> None:
    path = tmp_path / "touched.db"
    path.touch()
    with durq.connect(f"sqlite:///{path}") as q:
        assert q.enqueue("x").state is durq.JobState.QUEUED


def test_a_closed_queue_refuses_work(tmp_path: Path) -> None:
    q = durq.connect(f"sqlite:///{tmp_path}/durq.db")
    q.close()
    with pytest.raises(durq.BackendError):
        q.enqueue("x")


def test_a_writer_waits_for_the_lock_and_keeps_its_busy_timeout(tmp_path: Path) -> None:
    """``write`` waits for another connection's write lock with its own short retries (the
    busy handler is off meanwhile) and gets it once released; afterwards the connection's
    busy timeout is what it was, for reads and the rest."""
    import threading

    q = durq.connect(f"sqlite:///{tmp_path / 'q.db'}")
    assert isinstance(q, sqlite_backend.SQLiteQueue)
    q.enqueue({"n": 1})
    holder = sqlite3.connect(tmp_path / "q.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE durq_queues SET paused = paused")
    released = threading.Event()

    def release_soon() -> None:
        released.wait(10)
        holder.execute("COMMIT")

    releaser = threading.Thread(target=release_soon)
    releaser.start()
    waiter = threading.Thread(target=lambda: q.enqueue_many([{"n": 2}, {"n": 3}]))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive(), "the enqueue went ahead while another connection held the lock"
    released.set()
    waiter.join(20)
    releaser.join(10)
    assert not waiter.is_alive()
    assert len(q.list_jobs(limit=10)) == 3
    with q.db.read() as conn:
        (timeout,) = conn.execute("PRAGMA busy_timeout").fetchone()
    assert timeout == int(sqlite_connection.BUSY_TIMEOUT * 1000)
    holder.close()
    q.close()


def test_a_lone_enqueue_gives_up_once_the_busy_timeout_has_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lone enqueue runs its statement before any retry loop: a lock held past the busy
    # timeout must end it after one timeout, not after SQLite's wait plus the loop's own.
    timeout = 0.5
    monkeypatch.setattr(sqlite_connection, "BUSY_TIMEOUT", timeout)
    q = durq.connect(f"sqlite:///{tmp_path / 'q.db'}")
    q.enqueue({"n": 1})
    q.enqueue({"n": 2})  # the options are checked now: the next call takes the one-job path
    holder = sqlite3.connect(tmp_path / "q.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE durq_queues SET paused = paused")
    started = time.monotonic()
    with pytest.raises(durq.BackendUnavailable, match="locked"):
        q.enqueue({"n": 3})
    waited = time.monotonic() - started
    holder.execute("ROLLBACK")
    assert timeout * 0.9 <= waited < timeout * 1.6, waited  # one timeout, not two or three
    assert [job.payload for job in q.list_jobs()] == [{"n": 2}, {"n": 1}]
    holder.close()
    q.close()
