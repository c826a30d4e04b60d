"""Jobs inside the application's own transaction, on both backends: ``enqueue(connection=)``
commits or rolls back with the application's data, ``complete_in`` completes a job with its
task's effect. These run in one process; test_transaction_workers.py has real workers."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import app_db
import durq
from durq.worker.context import CancelFlag, running


@pytest.fixture
def app_conn(queue_url: str, queue: durq.JobQueue) -> Iterator[Any]:
    """The application's own connection to the queue's database, with an ``orders`` table."""
    app_db.sql(queue_url, "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)")
    with closing(app_db.connect(queue_url)) as conn:
        yield conn


class Wakeups:
    """What an idle worker would hear: PostgreSQL's NOTIFY on the jobs channel, or a change
    of SQLite's data version seen from another connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = app_db.connect(url)
        if app_db.is_sqlite(url):
            self.version = self._data_version()
        else:
            self.conn.execute("LISTEN durq_jobs")

    def _data_version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def heard(self) -> bool:
        if app_db.is_sqlite(self.url):
            version, self.version = self.version, self._data_version()
            return version != self.version
        return any(True for _ in self.conn.notifies(timeout=0.5, stop_after=1))

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def wakeups(queue_url: str, queue: durq.JobQueue) -> Iterator[Wakeups]:
    heard = Wakeups(queue_url)
    yield heard
    heard.close()


def orders(url: str) -> list[tuple[Any, ...]]:
    return app_db.sql(url, "SELECT id, item FROM orders ORDER BY id")


# -- enqueue in the application's transaction ------------------------------------------------


def test_a_rolled_back_enqueue_leaves_no_job_and_no_wakeup(
    queue_url: str, queue: durq.JobQueue, app_conn: Any, wakeups: Wakeups
) -> None:
    with pytest.raises(RuntimeError, match="the order failed"), app_db.Transaction(app_conn):
        app_conn.execute(app_db.marks(app_conn, "INSERT INTO orders VALUES (?, ?)"), (1, "x"))
        job = queue.enqueue({"order": 1}, queue="billing", connection=app_conn)
        assert job.state == "queued" and job.queue == "billing"
        raise RuntimeError("the order failed")

    assert orders(queue_url) == [] and queue.list_jobs() == []
    assert "billing" not in queue.stats()["queues"]  # its registration rolled back too
    assert not wakeups.heard()
    with pytest.raises(durq.JobNotFound):
        queue.get(job.id)


def test_a_committed_enqueue_is_there_with_its_order_and_wakes_a_worker(
    queue_url: str, queue: durq.JobQueue, app_conn: Any, wakeups: Wakeups
) -> None:
    with app_db.Transaction(app_conn):
        app_conn.execute(app_db.marks(app_conn, "INSERT INTO orders VALUES (?, ?)"), (1, "x"))
        job = queue.enqueue({"order": 1}, queue="billing", priority=3, connection=app_conn)
        # Not visible to anyone else before the commit.
        assert queue.list_jobs() == []

    assert orders(queue_url) == [(1, "x")]
    stored = queue.get(job.id)
    assert (stored.state, stored.payload, stored.priority) == ("queued", {"order": 1}, 3)
    assert "billing" in queue.stats()["queues"]
    assert wakeups.heard()
    claimed = queue.claim("w1")
    assert claimed is not None and claimed.id == job.id


def test_enqueue_many_and_dedupe_in_the_transaction(queue: durq.JobQueue, app_conn: Any) -> None:
    with app_db.Transaction(app_conn):
        jobs = queue.enqueue_many([1, 2, 3], queue="bulk", connection=app_conn)
        first = queue.enqueue("once", dedupe_key="k", connection=app_conn)
        again = queue.enqueue("twice", dedupe_key="k", connection=app_conn)
    assert again.id == first.id and again.payload == "once"
    assert sorted(j.payload for j in queue.list_jobs(queue="bulk")) == [1, 2, 3]
    assert {j.id for j in queue.list_jobs()} == {j.id for j in jobs} | {first.id}


def test_a_task_enqueued_on_the_application_connection(
    queue_url: str, queue: durq.JobQueue, app_conn: Any
) -> None:
    app = durq.App(name="shop")

    @app.task(queue="billing")
    def charge_card(order_id: int) -> None: ...

    app.use_queue(queue)
    with app_db.Transaction(app_conn):
        app_conn.execute(app_db.marks(app_conn, "INSERT INTO orders VALUES (?, ?)"), (42, "x"))
        job = charge_card.configure(connection=app_conn).enqueue(order_id=42)
    stored = queue.get(job.id)
    assert (stored.task, stored.queue, stored.payload) == (
        charge_card.name,
        "billing",
        {"args": [], "kwargs": {"order_id": 42}},
    )

    with pytest.raises(RuntimeError), app_db.Transaction(app_conn):
        charge_card.configure(connection=app_conn).enqueue(43)
        raise RuntimeError("rolled back")
    assert [j.id for j in queue.list_jobs()] == [job.id]


def test_a_connection_durq_cannot_use_is_refused_and_changes_nothing(
    queue_url: str, queue: durq.JobQueue, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as elsewhere, closing(sqlite3.connect(":memory:")) as mem:
        for connection in (object(), elsewhere, mem):
            with pytest.raises(durq.InvalidJob) as refused:
                queue.enqueue("x", connection=connection)
            assert "\n" not in str(refused.value)
        tables = elsewhere.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [] and queue.list_jobs() == []


def test_bad_job_options_are_refused_before_the_application_transaction_is_touched(
    queue_url: str, queue: durq.JobQueue, app_conn: Any
) -> None:
    with app_db.Transaction(app_conn):
        app_conn.execute(app_db.marks(app_conn, "INSERT INTO orders VALUES (?, ?)"), (1, "x"))
        with pytest.raises(durq.InvalidJob, match="max_attempts"):
            queue.enqueue("x", max_attempts=0, connection=app_conn)
        with pytest.raises(durq.InvalidJob, match="JSON"):
            queue.enqueue(float("nan"), connection=app_conn)
    # The application's own work went on and committed.
    assert orders(queue_url) == [(1, "x")] and queue.list_jobs() == []


# -- completion in the application's transaction ---------------------------------------------


def test_complete_in_commits_the_job_with_the_effect(
    queue_url: str, queue: durq.JobQueue, app_conn: Any
) -> None:
    queue.enqueue("charge")
    job = queue.claim("w1")
    assert job is not None
    with app_db.Transaction(app_conn):
        app_conn.execute(app_db.marks(app_conn, "INSERT INTO orders VALUES (?, ?)"), (7, "x"))
        done = queue.complete_in(app_conn, job, {"charged": 7})
        assert done.state == "succeeded"
        assert queue.get(job.id).state == "running"  # others see it only after the commit

    stored = queue.get(job.id)
    assert (stored.state, stored.result) == ("succeeded", {"charged": 7})
    assert [a.outcome for a in queue.attempts(job.id)] == ["succeeded"]
    assert orders(queue_url) == [(7, "x")]
    with pytest.raises(durq.LeaseLost):  # the worker's own completion is refused
        queue.complete(job, "again")


def test_complete_in_rolled_back_leaves_the_job_running(
    queue_url: str, queue: durq.JobQueue, app_conn: Any
) -> None:
    queue.enqueue("charge")
    job = queue.claim("w1")
    assert job is not None
    with pytest.raises(RuntimeError), app_db.Transaction(app_conn):
        app_conn.execute(app_db.marks(app_conn, "INSERT INTO orders VALUES (?, ?)"), (7, "x"))
        queue.complete_in(app_conn, job, "done")
        raise RuntimeError("the effect failed after all")
    assert queue.get(job.id).state == "running" and orders(queue_url) == []
    assert [a.outcome for a in queue.attempts(job.id)] == [None]
    queue.fail(job, "it failed")  # the worker's lease still holds
    assert queue.get(job.id).state == "queued"


def test_complete_in_with_a_stale_lease_raises_lease_lost_and_writes_nothing(
    queue_url: str, queue: durq.JobQueue, app_conn: Any
) -> None:
    queue.enqueue("charge")
    stale = queue.claim("w1", lease=0.05)
    assert stale is not None
    threading.Event().wait(0.2)
    rescued = queue.claim("w2")
    assert rescued is not None and rescued.id == stale.id

    with pytest.raises(durq.LeaseLost), app_db.Transaction(app_conn):
        app_conn.execute(app_db.marks(app_conn, "INSERT INTO orders VALUES (?, ?)"), (7, "x"))
        queue.complete_in(app_conn, stale, "done")
    assert orders(queue_url) == []
    now = queue.get(stale.id)
    assert (now.state, now.worker_id, now.lease_token) == ("running", "w2", rescued.lease_token)


def test_durq_complete_in_completes_the_running_job(
    queue_url: str, queue: durq.JobQueue, app_conn: Any
) -> None:
    with pytest.raises(durq.DurqError, match="only available while a job runs"):
        durq.complete_in(app_conn, "x")
    queue.enqueue("charge")
    job = queue.claim("w1")
    assert job is not None
    with running(job, CancelFlag(), queue) as here:
        with app_db.Transaction(app_conn):
            durq.complete_in(app_conn, {"ok": True})
        assert here.completed
    assert queue.get(job.id).result == {"ok": True}


# -- SQLite: durq's tables in the application's own file -------------------------------------


def test_durq_shares_an_application_file_only_when_told(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers VALUES (1, 'ada')")

    with pytest.raises(durq.BackendError, match=r"not a durq database.*\?shared=1"):
        durq.connect(f"sqlite:///{path}")
    with closing(sqlite3.connect(path)) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert names == {"customers"}  # refused, and left as it was

    with durq.connect(f"sqlite:///{path}?shared=1") as queue:
        app_conn = app_db.connect(f"sqlite:///{path}")
        with closing(app_conn), app_db.Transaction(app_conn):
            app_conn.execute("INSERT INTO customers VALUES (2, 'grace')")
            job = queue.enqueue({"welcome": 2}, connection=app_conn)
        assert queue.get(job.id).payload == {"welcome": 2}
    # Once durq's tables are there, the plain URL opens it too.
    with durq.connect(f"sqlite:///{path}") as queue:
        assert [j.id for j in queue.list_jobs()] == [job.id]
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT name FROM customers ORDER BY id").fetchall() == [
            ("ada",),
            ("grace",),
        ]


def test_a_shared_file_with_foreign_durq_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE durq_jobs (x)")
    with pytest.raises(durq.BackendError, match="durq_ tables that durq did not make"):
        durq.connect(f"sqlite:///{path}?shared=1")


def test_bad_shared_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(durq.BackendError, match="shared must be 1 or 0"):
        durq.connect(f"sqlite:///{tmp_path}/q.db?shared=maybe")
    assert not (tmp_path / "q.db").exists()


# -- PostgreSQL: an async psycopg connection -------------------------------------------------


@pytest.fixture
def pg_queue(request: pytest.FixtureRequest) -> Iterator[durq.JobQueue]:
    import pg_support

    url = pg_support.fresh_database(request)
    app_db.sql(url, "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)")
    with durq.connect(url) as queue:
        yield queue


@pytest.mark.postgres
def test_enqueue_async_commits_and_rolls_back_with_the_async_transaction(
    pg_queue: durq.JobQueue,
) -> None:
    import psycopg

    app = durq.App(name="shop")

    @app.task(queue="billing")
    def charge_card(order_id: int) -> None: ...

    app.use_queue(pg_queue)

    async def place_orders() -> tuple[durq.Job, durq.Job, durq.Job]:
        async with await psycopg.AsyncConnection.connect(pg_queue.url) as conn:
            async with conn.transaction():
                await conn.execute("INSERT INTO orders VALUES (1, 'x')")
                kept = await pg_queue.enqueue_async({"order": 1}, connection=conn)
                task_job = await charge_card.configure(connection=conn).enqueue_async(1)
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    await conn.execute("INSERT INTO orders VALUES (2, 'y')")
                    lost = await pg_queue.enqueue_async({"order": 2}, connection=conn)
                    raise RuntimeError("the order failed")
        return kept, task_job, lost

    kept, task_job, lost = asyncio.run(place_orders())
    assert orders(pg_queue.url) == [(1, "x")]
    assert {j.id for j in pg_queue.list_jobs()} == {kept.id, task_job.id}
    assert pg_queue.get(task_job.id).task == charge_card.name
    with pytest.raises(durq.JobNotFound):
        pg_queue.get(lost.id)


@pytest.mark.postgres
def test_complete_in_async_and_the_wrong_connection(pg_queue: durq.JobQueue) -> None:
    import psycopg

    pg_queue.enqueue("charge")
    job = pg_queue.claim("w1")
    assert job is not None

    async def complete() -> durq.Job:
        async with await psycopg.AsyncConnection.connect(pg_queue.url) as conn:
            with pytest.raises(durq.InvalidJob, match="psycopg Connection, not AsyncConnection"):
                pg_queue.complete_in(conn, job, "sync call, async connection")
            async with conn.transaction():
                await conn.execute("INSERT INTO orders VALUES (7, 'x')")
                return await pg_queue.complete_in_async(conn, job, {"charged": 7})

    assert asyncio.run(complete()).state == "succeeded"
    assert pg_queue.get(job.id).result == {"charged": 7}
    assert orders(pg_queue.url) == [(7, "x")]
    with (
        closing(app_db.connect(pg_queue.url)) as sync_conn,
        pytest.raises(durq.InvalidJob, match="AsyncConnection, not Connection"),
    ):
        asyncio.run(pg_queue.enqueue_async("x", connection=sync_conn))
    assert [j.id for j in pg_queue.list_jobs()] == [job.id]
