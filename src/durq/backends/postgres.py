"""The PostgreSQL backend: durq on a server, for producers and workers on many machines.

How it stays safe and fast:
- Claim is one statement: a CTE picks the next ready job with ``FOR UPDATE SKIP LOCKED`` over
  a partial index of queued rows in claim order, marks it running and starts its attempt.
  Concurrent claimers skip each other's row instead of waiting on it, and finished rows never
  slow the claim down.
- Every time comes from the server's clock (``now()``), never the client's. Leases are
  written by one machine and compared by another (a rescuing claimer on a second host);
  with one clock, skew between worker machines cannot expire a live lease early or keep a
  dead worker's job locked late.
- Enqueue, release, a retrying fail, resubmit and resume send ``NOTIFY durq_jobs`` in their
  own transaction, so it is delivered exactly when the change is visible. Idle workers wait
  on a dedicated ``LISTEN`` connection and wake within a millisecond or so.
- A ``psycopg_pool`` pool per process, created lazily and created anew in a forked child
  (a child must never talk on its parent's sockets).
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from durq import validation
from durq.backends._common import (
    bulk_state,
    purge_states,
    refusal,
    state_value,
    stats_shape,
    throughput_shape,
)
from durq.backends._sql import load_migrations, load_queries
from durq.errors import BackendError, InvalidJob, InvalidState, JobNotFound, LeaseLost
from durq.ids import new_job_id, new_job_ids
from durq.job import (
    CANCELLABLE_STATES,
    FINISHED_STATES,
    JSON,
    Attempt,
    Job,
    JobState,
    Outcome,
    WorkerInfo,
)
from durq.queue import DEFAULT_LEASE, JobQueue, QueueSettings

try:
    import psycopg
    import psycopg_pool
    from psycopg import errors as pg_errors
    from psycopg.conninfo import conninfo_to_dict
except ImportError as exc:  # the optional extra is not installed
    raise BackendError(
        "the PostgreSQL backend needs the 'postgres' extra: pip install 'durq[postgres]'"
    ) from exc

Q = load_queries("postgres_queries.sql")
MIGRATIONS = load_migrations("postgres")
SCHEMA_VERSION = len(MIGRATIONS)

CHANNEL = "durq_jobs"  # the NOTIFY channel; the payload is the queue name
_CLAIM = {
    "any": Q["claim"].format(queue_filter="true"),
    "one": Q["claim"].format(queue_filter="queue = %(queue)s"),
    "many": Q["claim"].format(queue_filter="queue = ANY(%(queues)s::text[])"),
}
# Any constant will do, as long as every durq uses the same one: it serializes migrations.
_MIGRATION_LOCK = 0x6475_7271_6D69_6772  # "durqmigr"
_BATCH = 500  # rows per transaction for bulk admin actions and purge
_POOL_MAX = 4  # connections per process: the worker's main thread, a handler's own, spares
_CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise
_POOL_WAIT = 60.0  # seconds a caller waits for a free pooled connection


def _job(row: Sequence[Any]) -> Job:
    """A ``durq_jobs`` row (``SELECT *`` column order) as a ``Job``; json arrives decoded."""
    return Job(
        id=row[0],
        queue=row[1],
        payload=row[2],
        state=JobState(row[3]),
        priority=row[4],
        run_at=row[5],
        attempts=row[6],
        max_attempts=row[7],
        timeout=row[8],
        dedupe_key=row[9],
        worker_id=row[10],
        lease_expires_at=row[11],
        lease_token=row[12],
        last_error=row[13],
        result=row[14],
        created_at=row[15],
        updated_at=row[16],
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _no_nul(text: str) -> str:
    # PostgreSQL text cannot hold NUL; a traceback may. U+FFFD marks what was there.
    return text.replace("\x00", "\ufffd")


def describe_url(url: str) -> str:
    """``user@host:port/dbname`` of a libpq URL, without the password, for messages."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise BackendError(f"bad PostgreSQL URL: {_one_line(exc)}") from exc
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    user = str(params.get("user") or "")
    dbname = str(params.get("dbname") or user)
    return f"{user + '@' if user else ''}{host}:{port}/{dbname}"


class PostgresQueue(JobQueue):
    def __init__(self, url: str, settings: QueueSettings) -> None:
        self.settings = settings
        self.url = url
        self.where = describe_url(url)
        self._pid = os.getpid()
        self._lock = threading.Lock()  # guards creating the pool
        self._listen_lock = threading.Lock()
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._listener: psycopg.Connection[Any] | None = None
        self._inherited: list[object] = []
        self._known_queues: set[str] = set()
        self._closed = False
        self._migrate()  # connect now: a bad URL, server or database fails at connect

    # -- connections and transactions -------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        """A connection of its own (migrations, LISTEN), in autocommit mode."""
        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in conninfo_to_dict(self.url):
            options["connect_timeout"] = _CONNECT_TIMEOUT
        try:
            conn = psycopg.connect(self.url, **options)
        except psycopg.Error as exc:
            raise BackendError(
                f"cannot connect to PostgreSQL at {self.where}: {_one_line(exc)}"
            ) from exc
        try:
            _configure(conn)
        except psycopg.Error as exc:
            conn.close()
            raise BackendError(
                f"cannot configure a connection to PostgreSQL at {self.where}: {_one_line(exc)}"
            ) from exc
        return conn

    def _migrate(self) -> None:
        """Apply the missing migrations, each in one transaction with its version row.

        A session advisory lock makes concurrent first connects take turns; the one that
        comes second finds the work done. The lock is taken before the transaction, not in
        it: a backend reads the catalog changes another session committed only when a
        transaction starts (an advisory lock, unlike a table lock, does not refresh its
        catalog cache), so a transaction begun after the wait sees the tables the first
        connect made.
        """
        with self._connect() as conn:
            try:
                if self._schema_version(conn) == SCHEMA_VERSION:
                    return
                conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
                try:
                    while True:
                        with conn.transaction():
                            current = self._schema_version(conn)
                            if current == SCHEMA_VERSION:
                                break
                            conn.execute(
                                "CREATE TABLE IF NOT EXISTS durq_schema (version integer "
                                "PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                            )
                            version, script = MIGRATIONS[current]
                            conn.execute(script)
                            conn.execute(
                                "INSERT INTO durq_schema (version) VALUES (%s)", (version,)
                            )
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
            except psycopg.Error as exc:
                raise BackendError(
                    f"cannot use PostgreSQL database {self.where}: {_one_line(exc)}"
                ) from exc

    def _schema_version(self, conn: psycopg.Connection[Any]) -> int:
        """The schema version; refuses tables durq did not make, or a newer durq's schema."""
        schema, jobs = conn.execute(
            "SELECT to_regclass('durq_schema'), to_regclass('durq_jobs')"
        ).fetchone() or (None, None)
        if schema is None:
            if jobs is not None:
                raise BackendError(
                    f"{self.where} has a durq_jobs table that durq did not make; "
                    "it was left as it is"
                )
            return 0
        row = conn.execute("SELECT coalesce(max(version), 0) FROM durq_schema").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise BackendError(
                f"{self.where} has durq schema version {version}, newer than this durq's "
                f"{SCHEMA_VERSION}: upgrade durq"
            )
        return version

    def _reset_if_forked(self) -> None:
        if self._pid != os.getpid():
            # The parent's pool and LISTEN connection share sockets with the parent: closing
            # them here would end the parent's sessions, so they are kept, unused.
            self._inherited += [self._pool, self._listener]
            self._pool = None
            self._listener = None
            self._lock = threading.Lock()
            self._listen_lock = threading.Lock()
            self._pid = os.getpid()

    def _connection_pool(self) -> psycopg_pool.ConnectionPool:
        self._reset_if_forked()
        with self._lock:
            if self._closed:
                raise BackendError(f"{self.where}: the queue is closed")
            if self._pool is None:
                pool = psycopg_pool.ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=_POOL_MAX,
                    kwargs={"autocommit": True},
                    configure=_configure,
                    timeout=_POOL_WAIT,
                    open=False,
                    name=f"durq-{self._pid}",
                )
                pool.open()
                self._pool = pool
            return self._pool

    @contextmanager
    def _transaction(
        self, *, producing: bool = False, pipelined: bool = False
    ) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection; driver errors become ``BackendError``.

        ``producing``: a value the database refuses (out of range, NUL in text) came from
        the caller, so it is ``InvalidJob``. ``pipelined``: statements are sent without
        waiting for the previous one's answer until a result is read, so ``BEGIN``, the lost
        lease rescue and the claim travel together, and ``NOTIFY`` goes with ``COMMIT``: the
        hot paths cost two or three round trips instead of four or five.
        """
        pool = self._connection_pool()
        try:
            with pool.connection() as conn:
                if pipelined:
                    with conn.pipeline(), conn.transaction():
                        yield conn
                else:
                    with conn.transaction():
                        yield conn
        except psycopg.DataError as exc:
            if producing:
                raise InvalidJob(f"the database refused a value: {_one_line(exc)}") from exc
            raise BackendError(f"PostgreSQL at {self.where}: {_one_line(exc)}") from exc
        except psycopg.Error as exc:
            raise BackendError(f"PostgreSQL at {self.where}: {_one_line(exc)}") from exc

    def close(self) -> None:
        # After a fork the locks may have been copied while held by a parent's thread.
        self._reset_if_forked()
        with self._lock, self._listen_lock:
            if self._pid == os.getpid():
                if self._pool is not None:
                    self._pool.close()
                if self._listener is not None:
                    self._listener.close()
            self._pool = None
            self._listener = None
            self._closed = True

    def __del__(self) -> None:
        # The LISTEN connection is not pooled: close it with the queue that owns it, so a
        # queue dropped without close() leaves no open connection behind to warn about.
        listener = getattr(self, "_listener", None)
        if listener is not None and getattr(self, "_pid", None) == os.getpid():
            try:
                listener.close()
            except psycopg.Error:
                pass

    # -- producers ---------------------------------------------------------------------------

    @contextmanager
    def _producing(
        self, queues: Iterable[str], *, pipelined: bool = True
    ) -> Iterator[psycopg.Connection[Any]]:
        """A producer's transaction, which registers each queue the first time it is used.

        Queues are never deleted, so once registered they need not be written again. They
        are remembered only after COMMIT: remembered earlier, a registration that then
        rolled back would let another thread skip its own and leave a job in a queue that
        ``claim`` (which asks the registry for queue names) never looks at.
        """
        unknown = sorted(set(queues) - self._known_queues)
        with self._transaction(producing=True, pipelined=pipelined) as conn:
            for queue in unknown:
                conn.execute(Q["register_queue"], {"queue": queue})
            yield conn
        self._known_queues.update(unknown)

    def enqueue(
        self,
        payload: JSON,
        *,
        queue: str = "default",
        priority: int = 0,
        delay: float = 0.0,
        max_attempts: int = 5,
        timeout: float = 300.0,
        dedupe_key: str | None = None,
    ) -> Job:
        validation.job_options(queue, priority, delay, max_attempts, timeout)
        validation.dedupe_key(dedupe_key)
        params = {
            "id": new_job_id(),
            "queue": queue,
            "payload": validation.encode_json(payload, "payload", self.settings.max_payload_bytes),
            "priority": priority,
            "delay": float(delay),
            "max_attempts": max_attempts,
            "timeout": float(timeout),
            "dedupe_key": dedupe_key,
        }
        with self._producing([queue]) as conn:
            # A live job holding the key may finish between the insert that bumps into it and
            # the look-up; then the insert is simply tried again.
            while True:
                row = conn.execute(Q["insert_job"], params).fetchone()
                if row is not None:
                    conn.execute(Q["notify"], {"queue": queue})
                    return _job(row)
                existing = conn.execute(Q["find_live_duplicate"], params).fetchone()
                if existing is not None:
                    return _job(existing)

    def enqueue_many(
        self,
        payloads: Iterable[JSON],
        *,
        queue: str = "default",
        priority: int = 0,
        delay: float = 0.0,
        max_attempts: int = 5,
        timeout: float = 300.0,
    ) -> list[Job]:
        validation.job_options(queue, priority, delay, max_attempts, timeout)
        limit = self.settings.max_payload_bytes
        texts = [validation.encode_json(p, "payload", limit) for p in payloads]
        if not texts:
            return []
        ids = new_job_ids(len(texts))
        params = {
            "ids": ids,
            "payloads": texts,
            "queue": queue,
            "priority": priority,
            "delay": float(delay),
            "max_attempts": max_attempts,
            "timeout": float(timeout),
        }
        with self._producing([queue]) as conn:
            rows = conn.execute(Q["insert_jobs"], params).fetchall()
            conn.execute(Q["notify"], {"queue": queue})
        by_id = {row[0]: _job(row) for row in rows}
        return [by_id[job_id] for job_id in ids]

    def import_jobs(self, jobs: Iterable[Job]) -> int:
        rows: list[dict[str, Any]] = []
        for job in jobs:
            validation.importable(job)
            rows.append(
                {
                    "id": str(job.id),
                    "queue": job.queue,
                    "payload": validation.encode_json(
                        job.payload, "payload", self.settings.max_payload_bytes
                    ),
                    "priority": job.priority,
                    "run_at": job.run_at,
                    "attempts": job.attempts,
                    "max_attempts": job.max_attempts,
                    "timeout": float(job.timeout),
                    "dedupe_key": validation.dedupe_key(job.dedupe_key),
                    "created_at": job.created_at,
                }
            )
        if not rows:
            return 0
        queues = {job_row["queue"] for job_row in rows}
        with self._producing(queues, pipelined=False) as conn, conn.cursor() as cur:
            cur.executemany(Q["import_job"], rows)
            added = max(cur.rowcount, 0)
            for queue in sorted(queues):
                conn.execute(Q["notify"], {"queue": queue})
        return added

    # -- workers -----------------------------------------------------------------------------

    def _claim_in(
        self,
        conn: psycopg.Connection[Any],
        worker_id: str,
        queues: tuple[str, ...] | None,
        lease: float,
    ) -> Job | None:
        conn.execute(Q["rescue_lost_jobs"])
        params: dict[str, Any] = {
            "worker_id": worker_id,
            "token": secrets.token_hex(16),
            "lease": float(lease),
        }
        if queues is None:
            sql = _CLAIM["any"]
        elif len(queues) == 1:
            sql, params["queue"] = _CLAIM["one"], queues[0]
        else:
            sql, params["queues"] = _CLAIM["many"], list(queues)
        row = conn.execute(sql, params).fetchone()
        return None if row is None else _job(row)

    def claim(
        self, worker_id: str, queues: Sequence[str] | None = None, lease: float = DEFAULT_LEASE
    ) -> Job | None:
        checked = validation.claim_options(worker_id, queues, lease)
        with self._transaction(pipelined=True) as conn:
            return self._claim_in(conn, worker_id, checked, lease)

    def _fenced(
        self, conn: psycopg.Connection[Any], query: str, params: dict[str, Any], job: Job
    ) -> Job:
        """Run a fenced update; no row means the lease is stale (or the job is gone)."""
        row = conn.execute(query, {**params, "id": job.id, "token": job.lease_token}).fetchone()
        if row is not None:
            return _job(row)
        current = conn.execute(Q["get"], {"id": job.id}).fetchone()
        if current is None:
            raise JobNotFound(f"no job {job.id}")
        state = current[3]
        raise LeaseLost(
            f"job {job.id}: lease token is stale (the job is {state} now"
            + (", held by another attempt)" if state == "running" else ")")
        )

    def heartbeat(self, job: Job, lease: float = DEFAULT_LEASE) -> Job:
        validation.claimed(job)
        validation.seconds(lease, "lease", allow_zero=False)
        with self._transaction(pipelined=True) as conn:
            return self._fenced(conn, Q["heartbeat"], {"lease": float(lease)}, job)

    def _result_text(self, result: JSON) -> str:
        return validation.encode_json(result, "result", self.settings.max_payload_bytes)

    def _complete_in(self, conn: psycopg.Connection[Any], job: Job, result_text: str) -> Job:
        return self._fenced(conn, Q["complete"], {"result": result_text}, job)

    def _fail_in(self, conn: psycopg.Connection[Any], job: Job, error: str, retry: bool) -> Job:
        params = {
            "retry": bool(retry),
            "backoff": self.settings.retry.delay(job.attempts),
            "error": _no_nul(str(error)),
            "outcome": (Outcome.FAILED if retry else Outcome.UNPROCESSABLE).value,
        }
        failed = self._fenced(conn, Q["fail"], params, job)
        if failed.state is JobState.QUEUED:
            conn.execute(Q["notify"], {"queue": failed.queue})
        return failed

    def complete(self, job: Job, result: JSON = None) -> Job:
        validation.claimed(job)
        text = self._result_text(result)
        with self._transaction(pipelined=True) as conn:
            return self._complete_in(conn, job, text)

    def fail(self, job: Job, error: str, retry: bool = True) -> Job:
        validation.claimed(job)
        with self._transaction(pipelined=True) as conn:
            return self._fail_in(conn, job, error, retry)

    def release(self, job: Job) -> Job:
        validation.claimed(job)
        with self._transaction(pipelined=True) as conn:
            released = self._fenced(conn, Q["release"], {}, job)
            conn.execute(Q["notify"], {"queue": released.queue})
            return released

    def complete_and_claim(
        self,
        job: Job,
        result: JSON = None,
        *,
        worker_id: str,
        queues: Sequence[str] | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> tuple[Job, Job | None]:
        validation.claimed(job)
        text = self._result_text(result)
        checked = validation.claim_options(worker_id, queues, lease)
        with self._transaction(pipelined=True) as conn:
            done = self._complete_in(conn, job, text)
            return done, self._claim_in(conn, worker_id, checked, lease)

    def fail_and_claim(
        self,
        job: Job,
        error: str,
        retry: bool = True,
        *,
        worker_id: str,
        queues: Sequence[str] | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> tuple[Job, Job | None]:
        validation.claimed(job)
        checked = validation.claim_options(worker_id, queues, lease)
        with self._transaction(pipelined=True) as conn:
            failed = self._fail_in(conn, job, error, retry)
            return failed, self._claim_in(conn, worker_id, checked, lease)

    def worker_heartbeat(
        self, worker_id: str, *, host: str, pid: int, queues: Sequence[str] | None
    ) -> None:
        validation.worker(worker_id, host, pid, queues)
        params = {
            "id": worker_id,
            "host": host,
            "pid": pid,
            "queues": None if queues is None else list(queues),
            "gone_after": 10 * self.settings.worker_stale_after,
        }
        with self._transaction(pipelined=True) as conn:
            conn.execute(Q["worker_heartbeat"], params)
            conn.execute(Q["forget_long_gone_workers"], params)

    def worker_stopped(self, worker_id: str) -> None:
        with self._transaction() as conn:
            conn.execute(Q["worker_stopped"], {"id": worker_id})

    def wait_for_change(self, timeout: float) -> None:
        self._reset_if_forked()
        with self._listen_lock:
            if self._closed:
                raise BackendError(f"{self.where}: the queue is closed")
            if self._listener is None:
                self._listener = self._connect()
                try:
                    self._listener.execute(f"LISTEN {CHANNEL}")
                except psycopg.Error as exc:
                    self._drop_listener()
                    raise BackendError(f"PostgreSQL at {self.where}: {_one_line(exc)}") from exc
                # A job enqueued after the caller's empty claim but before this LISTEN sent
                # no notification we can see, so report a possible change at once.
                return
            try:
                for _ in self._listener.notifies(timeout=max(0.0, timeout), stop_after=1):
                    break
                # Take what else has arrived too, so it does not cause a second wake-up.
                for _ in self._listener.notifies(timeout=0.0):
                    pass
            except psycopg.Error:
                # The server went away: report a possible change; the caller's next claim
                # tells it whether the database is usable, and the next wait reconnects.
                self._drop_listener()

    def _drop_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except psycopg.Error:
                pass
            self._listener = None

    # -- admin -------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with self._transaction(pipelined=True) as conn:
            row = conn.execute(Q["get"], {"id": str(job_id)}).fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        return _job(row)

    def list_jobs(
        self,
        state: JobState | str | None = None,
        queue: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Job]:
        where: list[str] = []
        params: list[Any] = []
        if state is not None:
            where.append("state = %s")
            params.append(state_value(state))
        if queue is not None:
            where.append("queue = %s")
            params.append(validation.queue_name(queue))
        validation.page_limit(limit)
        if before is not None:
            where.append("id < %s")
            params.append(str(before))
        sql = "SELECT * FROM durq_jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT %s"
        with self._transaction() as conn:
            rows = conn.execute(sql, (*params, limit)).fetchall()
        return [_job(r) for r in rows]

    def attempts(self, job_id: str) -> list[Attempt]:
        with self._transaction() as conn:
            if conn.execute(Q["get"], {"id": str(job_id)}).fetchone() is None:
                raise JobNotFound(f"no job {job_id}")
            rows = conn.execute(Q["attempts"], {"id": str(job_id)}).fetchall()
        return [
            Attempt(
                job_id=r[0],
                attempt=r[1],
                worker_id=r[2],
                started_at=r[3],
                finished_at=r[4],
                outcome=None if r[5] is None else Outcome(r[5]),
                error=r[6],
            )
            for r in rows
        ]

    def _now(self, conn: psycopg.Connection[Any]) -> float:
        row = conn.execute(Q["now"]).fetchone()
        assert row is not None
        return float(row[0])

    def stats(self) -> dict[str, Any]:
        stale_after = {"stale_after": self.settings.worker_stale_after}
        with self._transaction() as conn:
            # One snapshot for all the counts, so they add up.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            now = self._now(conn)
            queues = {name: bool(paused) for name, paused in conn.execute(Q["queues"])}
            counts = conn.execute(Q["counts"]).fetchall()
            oldest = {name: float(t) for name, t in conn.execute(Q["oldest_ready"])}
            row = conn.execute(Q["live_worker_count"], stale_after).fetchone()
        return stats_shape(queues, counts, oldest, int(row[0]) if row else 0, now)

    def throughput(
        self, window: timedelta = timedelta(hours=1), step: timedelta = timedelta(minutes=1)
    ) -> list[tuple[datetime, dict[str, int]]]:
        step_s, n = validation.throughput_steps(window, step)
        with self._transaction() as conn:
            start = (self._now(conn) // step_s + 1 - n) * step_s
            rows = conn.execute(Q["finished_by_step"], {"start": start, "step": step_s})
            found = rows.fetchall()
        return throughput_shape(found, start, step_s, n)

    def attempt_durations(self, buckets: Sequence[float]) -> dict[str, tuple[list[int], float]]:
        bounds = validation.duration_buckets(buckets)
        duration = "extract(epoch FROM finished_at - started_at)"
        columns = "".join(f", count(*) FILTER (WHERE {duration} <= %s)" for _ in bounds)
        sql = (
            f"SELECT outcome, count(*), coalesce(sum({duration}), 0)::float8{columns} "
            "FROM durq_attempts WHERE finished_at IS NOT NULL GROUP BY outcome"
        )
        with self._transaction() as conn:
            rows = conn.execute(sql, bounds).fetchall()
        return {r[0]: ([*(int(n) for n in r[3:]), int(r[1])], float(r[2])) for r in rows}

    def resubmit(self, job_id: str) -> Job:
        with self._transaction() as conn:
            try:
                row = conn.execute(Q["resubmit"], {"id": str(job_id)}).fetchone()
            except pg_errors.UniqueViolation:
                raise InvalidState(
                    f"job {job_id}: a queued or running job already holds its dedupe key"
                ) from None
            if row is None:
                raise self._refusal(conn, job_id, "resubmit")
            job = _job(row)
            conn.execute(Q["notify"], {"queue": job.queue})
            return job

    def cancel(self, job_id: str) -> Job:
        with self._transaction() as conn:
            row = conn.execute(Q["cancel"], {"id": str(job_id)}).fetchone()
            if row is None:
                raise self._refusal(conn, job_id, "cancel")
            return _job(row)

    @staticmethod
    def _refusal(conn: psycopg.Connection[Any], job_id: str, action: str) -> Exception:
        row = conn.execute(Q["get"], {"id": str(job_id)}).fetchone()
        return refusal(job_id, None if row is None else row[3], action)

    def _in_batches(
        self, state: str, queue: str | None, query: str, *, allowed: frozenset[JobState]
    ) -> int:
        bulk_state(state, allowed)
        if queue is not None:
            validation.queue_name(queue)
        finder = Q["ids_in_state" if queue is None else "ids_in_state_and_queue"]
        done, after = 0, ""
        while True:
            params: dict[str, Any] = {"state": state, "queue": queue, "after": after}
            try:
                with self._transaction() as conn:
                    ids = [r[0] for r in conn.execute(finder, {**params, "limit": _BATCH})]
                    if not ids:
                        return done
                    changed = conn.execute(query, {**params, "ids": ids}).rowcount
                    if query is Q["resubmit_batch"] and changed:
                        conn.execute(Q["notify"], {"queue": queue or ""})
            except BackendError as exc:
                # A producer took a dedupe key this batch was about to reuse: try it again.
                if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                    continue
                raise
            done += changed
            after = ids[-1]

    def resubmit_all(self, state: JobState | str, queue: str | None = None) -> int:
        query = Q["resubmit_batch"]
        return self._in_batches(state_value(state), queue, query, allowed=FINISHED_STATES)

    def cancel_all(self, state: JobState | str, queue: str | None = None) -> int:
        allowed = CANCELLABLE_STATES
        return self._in_batches(state_value(state), queue, Q["cancel_batch"], allowed=allowed)

    def delete(self, job_id: str) -> None:
        with self._transaction() as conn:
            row = conn.execute(Q["delete_finished"], {"id": str(job_id)}).fetchone()
            if not row or row[0] == 0:
                raise self._refusal(conn, job_id, "delete")

    def purge(self, older_than: timedelta, states: Iterable[JobState | str] | None = None) -> int:
        chosen = purge_states(older_than, states)
        params = {"older_than": older_than.total_seconds(), "limit": _BATCH}
        deleted = 0
        for state in chosen:
            while True:
                # Each batch is its own short transaction, so workers wait at most one batch.
                with self._transaction() as conn:
                    row = conn.execute(Q["purge_batch"], {**params, "state": state}).fetchone()
                n = int(row[0]) if row else 0
                deleted += n
                if n < _BATCH:
                    break
        return deleted

    def pause(self, queue: str) -> None:
        with self._transaction() as conn:
            conn.execute(Q["set_paused"], {"queue": validation.queue_name(queue), "paused": True})

    def resume(self, queue: str) -> None:
        with self._transaction() as conn:
            params = {"queue": validation.queue_name(queue), "paused": False}
            conn.execute(Q["set_paused"], params)
            conn.execute(Q["notify"], params)

    def workers(self) -> list[WorkerInfo]:
        with self._transaction() as conn:
            rows = conn.execute(
                Q["workers"], {"stale_after": self.settings.worker_stale_after}
            ).fetchall()
        return [
            WorkerInfo(
                id=r[0],
                host=r[1],
                pid=r[2],
                queues=() if r[3] is None else tuple(r[3]),
                started_at=r[4],
                last_seen_at=r[5],
                current_job_id=r[6],
            )
            for r in rows
        ]


def _configure(conn: psycopg.Connection[Any]) -> None:
    # Times come back as UTC datetimes whatever the server's or role's default zone.
    conn.execute("SET TIME ZONE 'UTC'")
