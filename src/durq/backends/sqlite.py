"""The SQLite backend: durq's embedded default. One file, many processes and threads.

How it stays safe and fast:
- WAL, so readers never block the writer, and a busy timeout, so writers wait their turn.
- Every write is one ``BEGIN IMMEDIATE`` transaction: it takes the write lock up front, so two
  writers never deadlock upgrading a read lock, and ``database is locked`` never escapes.
- One connection per process, opened lazily and opened anew in a forked child; a lock makes
  it safe to share between threads (the worker's main thread renews leases and records
  outcomes while a handler, in a thread of its own, may enqueue jobs).
- Claim is one ``UPDATE … RETURNING`` whose inner ``SELECT`` walks ``durq_jobs_ready``, a
  partial index of queued rows in claim order, so finished rows never slow it down.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

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
from durq.errors import BackendError, InvalidState, JobNotFound, LeaseLost
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

Q = load_queries("sqlite_queries.sql")
MIGRATIONS = load_migrations("sqlite")
SCHEMA_VERSION = len(MIGRATIONS)

_HEADER = b"SQLite format 3\x00"
_BUSY_TIMEOUT = 60.0  # seconds a writer waits for the lock before BackendError
_BATCH = 500  # rows per transaction for bulk admin actions and purge
_LONG_BACKLOG = 5000  # queued jobs from which list_jobs walks ids instead of sorting them
_MAX_LEGS = 400  # claim legs in one statement; SQLite allows 500 terms in a compound SELECT
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def _opt_dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


Row = tuple[Any, ...]  # a durq_jobs row as sqlite3 returns it (SELECT * column order)


_STATES = {state.value: state for state in JobState}  # a dict lookup; JobState() is slower
_decode = json.JSONDecoder().decode  # json.loads less its per-call argument checks


def _job(row: Sequence[Any]) -> Job:
    """A ``durq_jobs`` row (``SELECT *`` column order) as a ``Job``."""
    result = row[14]
    return Job(
        id=row[0],
        queue=row[1],
        payload=_decode(row[2]),
        state=_STATES[row[3]],
        priority=row[4],
        run_at=_dt(row[5]),
        attempts=row[6],
        max_attempts=row[7],
        timeout=row[8],
        dedupe_key=row[9],
        worker_id=row[10],
        lease_expires_at=_opt_dt(row[11]),
        lease_token=row[12],
        last_error=row[13],
        result=None if result is None or result == "null" else _decode(result),
        created_at=_dt(row[15]),
        updated_at=_dt(row[16]),
    )


# Each state's rows are reached through the partial index that holds just them (no index
# covers every state: moving every job through one on each transition cost the drain dearly).
# The planner uses a partial index only when it sees the state as a literal, hence the inline
# state (a JobState value, never user text) and INDEXED BY, which also keeps it off a scan of
# the whole table in id order when the state is rare.
_STATE_INDEX = {
    JobState.QUEUED: "durq_jobs_ready",
    JobState.RUNNING: "durq_jobs_lease",
    JobState.SUCCEEDED: "durq_jobs_finished",
    JobState.UNPROCESSABLE: "durq_jobs_finished",
    JobState.CANCELLED: "durq_jobs_finished",
}


def jobs_in_state(state: JobState | str) -> str:
    """``durq_jobs INDEXED BY … WHERE state = '…'``: a FROM and WHERE for one state's jobs."""
    chosen = JobState(state_value(state))
    return f"durq_jobs INDEXED BY {_STATE_INDEX[chosen]} WHERE state = '{chosen.value}'"


def parse_url(url: str) -> tuple[Path, str]:
    """``sqlite:///relative.db`` / ``sqlite:////abs.db`` [``?synchronous=normal``] →
    (path, synchronous pragma value)."""
    rest = url.removeprefix("sqlite://")
    if not rest.startswith("/") or len(rest) < 2:
        raise BackendError(
            f"bad SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////abs.db"
        )
    path_part, _, query = rest[1:].partition("?")
    options = parse_qs(query, keep_blank_values=True)
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise BackendError(f"bad SQLite URL {url!r}: unknown option {sorted(unknown)[0]!r}")
    sync = options.get("synchronous", ["full"])[-1].lower()
    if sync not in _SYNCHRONOUS:
        raise BackendError(f"bad SQLite URL {url!r}: synchronous must be full or normal")
    return Path(path_part), _SYNCHRONOUS[sync]


class SQLiteQueue(JobQueue):
    def __init__(self, url: str, settings: QueueSettings) -> None:
        self.settings = settings
        self.path, self._synchronous = parse_url(url)
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._inherited: list[sqlite3.Connection] = []
        self._known_queues: set[str] = set()
        self._claim_sql: dict[int, str] = {}  # by number of queues: names are parameters
        self._data_version: int | None = None
        self._closed = False
        with self._lock:
            self._connection()  # open now: a bad path or file fails at connect

    # -- connection and transactions ---------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise BackendError(f"{self.path}: the queue is closed")
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        self._check_file()
        try:
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open SQLite database {self.path}: {exc}") from exc
        try:
            self._check_schema(conn)
            self._retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._migrate(conn)
            # The baseline for wait_for_change: commits by others from now on are noticed.
            self._data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            conn.close()
            raise BackendError(f"cannot use SQLite database {self.path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_file(self) -> None:
        """Refuse, without touching it, a file that is not an SQLite database."""
        try:
            with open(self.path, "rb") as f:
                header = f.read(len(_HEADER))
        except FileNotFoundError:
            if not self.path.parent.is_dir():
                raise BackendError(
                    f"cannot open SQLite database {self.path}: {self.path.parent} does not exist"
                ) from None
            return
        except OSError as exc:
            raise BackendError(f"cannot open SQLite database {self.path}: {exc}") from exc
        if header and header != _HEADER:
            raise BackendError(f"{self.path} is not an SQLite database; it was left as it is")

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Refuse a database that another program owns, or a newer durq made."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return
        if "durq_schema" not in tables:
            raise BackendError(f"{self.path} is not a durq database; it was left as it is")
        (version,) = conn.execute("SELECT coalesce(max(version), 0) FROM durq_schema").fetchone()
        if version > SCHEMA_VERSION:
            raise BackendError(
                f"{self.path} has durq schema version {version}, newer than this durq's "
                f"{SCHEMA_VERSION}: upgrade durq"
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply the missing migrations, each in one transaction with its version row."""
        self._retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS durq_schema "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            (current,) = conn.execute(
                "SELECT coalesce(max(version), 0) FROM durq_schema"
            ).fetchone()
            for version, script in MIGRATIONS[current:]:
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute("INSERT INTO durq_schema VALUES (?, ?)", (version, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _retry_busy(step: Any) -> Any:
        """Run ``step``, retrying while another process holds a lock it needs.

        The busy timeout covers most waits; this covers the few SQLite reports at once
        (switching to WAL, a lock held across a checkpoint).
        """
        deadline = time.monotonic() + _BUSY_TIMEOUT
        delay = 0.001
        while True:
            try:
                return step()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _reset_if_forked(self) -> None:
        if self._pid != os.getpid():
            # A forked child must not use its parent's connection; closing it here could
            # disturb the parent's locks, so it is kept, unused, until the child exits.
            self._lock = threading.RLock()
            if self._conn is not None:
                self._inherited.append(self._conn)
            self._conn = None
            self._data_version = None
            self._pid = os.getpid()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._reset_if_forked()
        with self._lock:
            try:
                conn = self._connection()
                self._retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
            except sqlite3.Error as exc:
                raise BackendError(f"{self.path}: {exc}") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # SQLite already rolled back (disk full, I/O error)
                if isinstance(exc, sqlite3.Error):
                    raise BackendError(f"{self.path}: {exc}") from exc
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several SELECTs (WAL readers never wait for writers)."""
        self._reset_if_forked()
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BackendError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            self._closed = True

    # -- producers ---------------------------------------------------------------------------

    def _job_row(
        self,
        payload: JSON,
        queue: str,
        priority: int,
        delay: float,
        max_attempts: int,
        timeout: float,
        dedupe_key: str | None,
        now: float,
    ) -> tuple[Any, ...]:
        text = validation.encode_json(payload, "payload", self.settings.max_payload_bytes)
        return (
            new_job_id(),
            queue,
            text,
            priority,
            now + delay,
            max_attempts,
            timeout,
            dedupe_key,
            now,
            now,
        )

    @contextmanager
    def _producing(self, queue: str) -> Iterator[sqlite3.Connection]:
        """A producer's transaction, which registers ``queue`` the first time it is used.

        Queues are never deleted, so once registered it need not be written again. The
        queue is remembered only after COMMIT: remembered earlier, a registration that then
        rolled back would let another thread skip its own and leave a job in a queue that
        ``claim`` (which asks the registry for queue names) never looks at.
        """
        new = queue not in self._known_queues
        with self._write() as conn:
            if new:
                conn.execute(Q["register_queue"], (queue,))
            yield conn
        if new:
            self._known_queues.add(queue)

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
        now = time.time()
        row = self._job_row(payload, queue, priority, delay, max_attempts, timeout, dedupe_key, now)
        with self._producing(queue) as conn:
            if dedupe_key is not None:
                existing = conn.execute(Q["find_live_duplicate"], (queue, dedupe_key)).fetchone()
                if existing is not None:
                    return _job(existing)
            conn.execute(Q["insert_job"], row)
        return self._new_job(row, json.loads(row[2]), _dt(now), _dt(row[4]))

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
        now = time.time()
        limit = self.settings.max_payload_bytes
        texts = [validation.encode_json(p, "payload", limit) for p in payloads]
        if not texts:
            return []
        rows = [
            (job_id, queue, text, priority, now + delay, max_attempts, timeout, None, now, now)
            for job_id, text in zip(new_job_ids(len(texts)), texts, strict=True)
        ]
        with self._producing(queue) as conn:
            conn.executemany(Q["insert_job"], rows)
        # One decode for the whole batch (the jobs carry the payloads as stored, not the
        # caller's objects) and one datetime for all: per-job costs add up at 1,000 a batch.
        stored = json.loads("[" + ",".join(row[2] for row in rows) + "]")
        created, run_at = _dt(now), _dt(rows[0][4])
        return [self._new_job(r, p, created, run_at) for r, p in zip(rows, stored, strict=True)]

    def import_jobs(self, jobs: Iterable[Job]) -> int:
        rows = []
        for job in jobs:
            validation.importable(job)
            text = validation.encode_json(job.payload, "payload", self.settings.max_payload_bytes)
            rows.append(
                (
                    job.id,
                    job.queue,
                    text,
                    job.priority,
                    job.run_at.timestamp(),
                    job.attempts,
                    job.max_attempts,
                    job.timeout,
                    validation.dedupe_key(job.dedupe_key),
                    job.created_at.timestamp(),
                    time.time(),
                )
            )
        added = 0
        with self._write() as conn:
            for queue in {r[1] for r in rows}:
                conn.execute(Q["register_queue"], (queue,))
            for row in rows:
                added += conn.execute(Q["import_job"], row).rowcount
        return added

    @staticmethod
    def _new_job(row: tuple[Any, ...], payload: JSON, created: datetime, run_at: datetime) -> Job:
        job_id, queue, _, priority, _, max_attempts, timeout, key, _, _ = row
        return Job(
            id=job_id,
            queue=queue,
            payload=payload,
            state=JobState.QUEUED,
            priority=priority,
            run_at=run_at,
            attempts=0,
            max_attempts=max_attempts,
            timeout=timeout,
            dedupe_key=key,
            worker_id=None,
            lease_expires_at=None,
            lease_token=None,
            last_error=None,
            result=None,
            created_at=created,
            updated_at=created,
        )

    # -- workers -----------------------------------------------------------------------------

    def _claim_statement(self, queues: tuple[str, ...]) -> str:
        """One ``UPDATE … RETURNING``. Its candidate is the best of one index-ordered leg per
        queue, so each leg is a seek into ``durq_jobs_ready`` and no claim ever sorts rows."""
        sql = self._claim_sql.get(len(queues))
        if sql is None:

            def leg(i: int, columns: str) -> str:
                return (
                    f"SELECT {columns} FROM durq_jobs INDEXED BY durq_jobs_ready "
                    f"WHERE queue = :q{i} AND state = 'queued' AND run_at <= :now "
                    f"AND NOT EXISTS (SELECT 1 FROM durq_queues WHERE name = :q{i} AND paused) "
                    "ORDER BY priority DESC, run_at, id LIMIT 1"
                )

            if len(queues) > _MAX_LEGS:
                # Too many legs for one statement: one pass over the ready index instead,
                # which sorts the ready jobs of those queues (rare: hundreds of queues).
                candidate = (
                    "SELECT id FROM durq_jobs INDEXED BY durq_jobs_ready "
                    "WHERE state = 'queued' AND run_at <= :now "
                    "AND queue IN (SELECT value FROM json_each(:queues)) "
                    "AND queue NOT IN (SELECT name FROM durq_queues WHERE paused) "
                    "ORDER BY priority DESC, run_at, id LIMIT 1"
                )
            elif len(queues) == 1:
                candidate = leg(0, "id")
            else:
                legs = " UNION ALL ".join(
                    f"SELECT * FROM ({leg(i, 'id, priority, run_at')})" for i in range(len(queues))
                )
                candidate = f"SELECT id FROM ({legs}) ORDER BY priority DESC, run_at, id LIMIT 1"
            sql = (
                "UPDATE durq_jobs SET state = 'running', attempts = attempts + 1, "
                "worker_id = :worker_id, lease_token = :token, lease_expires_at = :until, "
                f"updated_at = :now WHERE id = ({candidate}) RETURNING *"
            )
            self._claim_sql[len(queues)] = sql
        return sql

    def _claim_in(
        self,
        conn: sqlite3.Connection,
        worker_id: str,
        queues: tuple[str, ...] | None,
        lease: float,
    ) -> Row | None:
        now = time.time()
        if conn.execute(Q["any_lease_expired"], {"now": now}).fetchone() is not None:
            conn.execute(Q["close_lost_attempts"], {"now": now})
            conn.execute(Q["rescue_lost_jobs"], {"now": now})
        if queues is None:
            queues = tuple(r[0] for r in conn.execute(Q["queues"]))
            if not queues:
                return None
        params: dict[str, Any] = {f"q{i}": name for i, name in enumerate(queues)}
        if len(queues) > _MAX_LEGS:
            params["queues"] = json.dumps(queues)
        params.update(worker_id=worker_id, token=secrets.token_hex(16), until=now + lease, now=now)
        row: Row | None = conn.execute(self._claim_statement(queues), params).fetchone()
        if row is not None:
            conn.execute(Q["start_attempt"], (row[0], row[6], worker_id, now))
        return row

    def claim(
        self, worker_id: str, queues: Sequence[str] | None = None, lease: float = DEFAULT_LEASE
    ) -> Job | None:
        checked = validation.claim_options(worker_id, queues, lease)
        with self._write() as conn:
            row = self._claim_in(conn, worker_id, checked, lease)
        return None if row is None else _job(row)

    def _fenced(self, conn: sqlite3.Connection, query: str, params: Any, job: Job) -> Row:
        """Run a fenced update; no row means the lease is stale (or the job is gone)."""
        row: Row | None = conn.execute(query, params).fetchone()
        if row is not None:
            return row
        current = conn.execute(Q["get"], (job.id,)).fetchone()
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
        now = time.time()
        with self._write() as conn:
            row = self._fenced(
                conn, Q["heartbeat"], (now + lease, now, job.id, job.lease_token), job
            )
        return _job(row)

    # The *_in helpers return rows, made into Jobs only after COMMIT: decoding JSON and times
    # inside the transaction would hold the write lock longer for every other worker.

    def _complete_in(self, conn: sqlite3.Connection, job: Job, result_text: str) -> Row:
        now = time.time()
        done = self._fenced(conn, Q["complete"], (result_text, now, job.id, job.lease_token), job)
        conn.execute(Q["finish_attempt"], (now, Outcome.SUCCEEDED, None, job.id, done[6]))
        return done

    def _fail_in(self, conn: sqlite3.Connection, job: Job, error: str, retry: bool) -> Row:
        now = time.time()
        params = {
            "retry": bool(retry),
            "retry_at": now + self.settings.retry.delay(job.attempts),
            "error": error,
            "now": now,
            "id": job.id,
            "token": job.lease_token,
        }
        failed = self._fenced(conn, Q["fail"], params, job)
        outcome = Outcome.FAILED if retry else Outcome.UNPROCESSABLE
        conn.execute(Q["finish_attempt"], (now, outcome, error, job.id, failed[6]))
        return failed

    def _result_text(self, result: JSON) -> str:
        return validation.encode_json(result, "result", self.settings.max_payload_bytes)

    def complete(self, job: Job, result: JSON = None) -> Job:
        validation.claimed(job)
        text = self._result_text(result)
        with self._write() as conn:
            row = self._complete_in(conn, job, text)
        return _job(row)

    def fail(self, job: Job, error: str, retry: bool = True) -> Job:
        validation.claimed(job)
        with self._write() as conn:
            row = self._fail_in(conn, job, str(error), retry)
        return _job(row)

    def release(self, job: Job) -> Job:
        validation.claimed(job)
        now = time.time()
        with self._write() as conn:
            released = self._fenced(conn, Q["release"], (now, now, job.id, job.lease_token), job)
            conn.execute(
                Q["finish_attempt"], (now, Outcome.RELEASED, None, job.id, released[6] + 1)
            )
        return _job(released)

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
        with self._write() as conn:
            done = self._complete_in(conn, job, text)
            row = self._claim_in(conn, worker_id, checked, lease)
        return _job(done), None if row is None else _job(row)

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
        with self._write() as conn:
            failed = self._fail_in(conn, job, str(error), retry)
            row = self._claim_in(conn, worker_id, checked, lease)
        return _job(failed), None if row is None else _job(row)

    def worker_heartbeat(
        self, worker_id: str, *, host: str, pid: int, queues: Sequence[str] | None
    ) -> None:
        validation.worker(worker_id, host, pid, queues)
        now = time.time()
        listed = None if queues is None else json.dumps(list(queues))
        with self._write() as conn:
            conn.execute(
                Q["worker_heartbeat"],
                {"id": worker_id, "host": host, "pid": pid, "queues": listed, "now": now},
            )
            conn.execute(
                Q["forget_long_gone_workers"], (now - 10 * self.settings.worker_stale_after,)
            )

    def worker_stopped(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(Q["worker_stopped"], (worker_id,))

    def wait_for_change(self, timeout: float) -> None:
        # PRAGMA data_version moves when another connection commits. Reading it touches only
        # the WAL index in shared memory, so polling it every millisecond costs next to
        # nothing and an idle worker notices a new job within about a millisecond.
        self._reset_if_forked()
        deadline = time.monotonic() + timeout
        with self._lock:
            self._connection()
        while time.monotonic() < deadline:
            time.sleep(0.001)
            with self._lock:
                version = self._connection().execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                self._data_version = version
                return

    # -- admin -------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with self._read() as conn:
            row = conn.execute(Q["get"], (str(job_id),)).fetchone()
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
        chosen = None if state is None else JobState(state_value(state))
        source = "durq_jobs WHERE 1" if chosen is None else jobs_in_state(chosen)
        where, params = [], []
        if queue is not None:
            # With no state, ``+queue`` keeps the planner on the primary key (already in id
            # order) instead of sorting a whole queue's queued rows out of durq_jobs_ready.
            where.append("queue = ?" if state is not None else "+queue = ?")
            params.append(validation.queue_name(queue))
        validation.page_limit(limit)
        if before is not None:
            where.append("id < ?")
            params.append(str(before))
        with self._read() as conn:
            if chosen is JobState.QUEUED and self._long_backlog(conn, queue):
                # durq_jobs_ready would sort the whole backlog by id to find one page; with a
                # long backlog, walking the ids newest first finds it at once (``+state`` keeps
                # the planner off the partial index).
                source = "durq_jobs WHERE +state = 'queued'"
            sql = f"SELECT * FROM {source}" + "".join(f" AND {term}" for term in where)
            sql += " ORDER BY id DESC LIMIT ?"
            rows = conn.execute(sql, (*params, limit)).fetchall()
        return [_job(r) for r in rows]

    @staticmethod
    def _long_backlog(conn: sqlite3.Connection, queue: str | None) -> bool:
        """Whether at least ``_LONG_BACKLOG`` jobs are queued (in ``queue``); reads at most that
        many entries of durq_jobs_ready."""
        in_queue = "" if queue is None else " AND queue = ?"
        sql = (
            "SELECT count(*) FROM (SELECT 1 FROM durq_jobs INDEXED BY durq_jobs_ready "
            f"WHERE state = 'queued'{in_queue} LIMIT {_LONG_BACKLOG})"
        )
        (found,) = conn.execute(sql, () if queue is None else (queue,)).fetchone()
        return bool(found >= _LONG_BACKLOG)

    def attempts(self, job_id: str) -> list[Attempt]:
        with self._read() as conn:
            if conn.execute(Q["get"], (str(job_id),)).fetchone() is None:
                raise JobNotFound(f"no job {job_id}")
            rows = conn.execute(Q["attempts"], (str(job_id),)).fetchall()
        return [
            Attempt(
                job_id=r[0],
                attempt=r[1],
                worker_id=r[2],
                started_at=_dt(r[3]),
                finished_at=_opt_dt(r[4]),
                outcome=None if r[5] is None else Outcome(r[5]),
                error=r[6],
            )
            for r in rows
        ]

    def stats(self) -> dict[str, Any]:
        now = time.time()
        with self._read() as conn:
            queues = {name: bool(paused) for name, paused in conn.execute(Q["queues"])}
            counts = conn.execute(Q["counts"]).fetchall()
            oldest = dict(conn.execute(Q["oldest_ready"], (now,)).fetchall())
            (workers,) = conn.execute(
                Q["live_worker_count"], (now - self.settings.worker_stale_after,)
            ).fetchone()
        return stats_shape(queues, counts, oldest, workers, now)

    def throughput(
        self, window: timedelta = timedelta(hours=1), step: timedelta = timedelta(minutes=1)
    ) -> list[tuple[datetime, dict[str, int]]]:
        step_s, n = validation.throughput_steps(window, step)
        start = (time.time() // step_s + 1 - n) * step_s
        with self._read() as conn:
            rows = conn.execute(Q["finished_by_step"], {"start": start, "step": step_s}).fetchall()
        return throughput_shape(rows, start, step_s, n)

    def attempt_durations(self, buckets: Sequence[float]) -> dict[str, tuple[list[int], float]]:
        bounds = validation.duration_buckets(buckets)
        columns = "".join(", sum(finished_at - started_at <= ?)" for _ in bounds)
        sql = (
            f"SELECT outcome, count(*), total(finished_at - started_at){columns} "
            "FROM durq_attempts WHERE finished_at IS NOT NULL GROUP BY outcome"
        )
        with self._read() as conn:
            rows = conn.execute(sql, bounds).fetchall()
        return {r[0]: ([*(int(n) for n in r[3:]), r[1]], float(r[2])) for r in rows}

    def resubmit(self, job_id: str) -> Job:
        now = time.time()
        with self._write() as conn:
            try:
                row = conn.execute(Q["resubmit"], (now, now, str(job_id))).fetchone()
            except sqlite3.IntegrityError:
                raise InvalidState(
                    f"job {job_id}: a queued or running job already holds its dedupe key"
                ) from None
            if row is None:
                raise self._refusal(conn, job_id, "resubmit")
            return _job(row)

    def cancel(self, job_id: str) -> Job:
        with self._write() as conn:
            row = conn.execute(Q["cancel"], (time.time(), str(job_id))).fetchone()
            if row is None:
                raise self._refusal(conn, job_id, "cancel")
            return _job(row)

    @staticmethod
    def _refusal(conn: sqlite3.Connection, job_id: str, action: str) -> Exception:
        row = conn.execute(Q["get"], (str(job_id),)).fetchone()
        return refusal(job_id, None if row is None else row[3], action)

    def _in_batches(
        self, state: str, queue: str | None, sql: str, *, allowed: frozenset[JobState]
    ) -> int:
        bulk_state(state, allowed)
        if queue is not None:
            validation.queue_name(queue)
        done, after = 0, ""
        while True:
            now = time.time()
            params = {"state": state, "queue": queue, "after": after, "limit": _BATCH}
            with self._write() as conn:
                if state == JobState.QUEUED:
                    finder = Q["ids_queued" if queue is None else "ids_queued_in_queue"]
                else:
                    finder = Q["ids_in_state" if queue is None else "ids_in_state_and_queue"]
                    finder = finder.format(jobs_in_state=jobs_in_state(state))
                ids = [r[0] for r in conn.execute(finder, params)]
                if not ids:
                    return done
                marks = ",".join("?" * len(ids))
                cur = conn.execute(sql.format(marks=marks), (now, state, *ids))
                done += cur.rowcount
                if state == JobState.QUEUED and cur.rowcount < len(ids):
                    # Some chosen jobs stayed queued (``sql`` keeps them): they would be
                    # chosen again forever. No caller does this; refuse rather than spin.
                    raise RuntimeError("a bulk action on queued jobs must take them out of queued")
                after = ids[-1]

    def resubmit_all(self, state: JobState | str, queue: str | None = None) -> int:
        sql = Q["resubmit_chosen"]
        return self._in_batches(state_value(state), queue, sql, allowed=FINISHED_STATES)

    def cancel_all(self, state: JobState | str, queue: str | None = None) -> int:
        sql = Q["cancel_chosen"]
        allowed = CANCELLABLE_STATES
        return self._in_batches(state_value(state), queue, sql, allowed=allowed)

    def delete(self, job_id: str) -> None:
        with self._write() as conn:
            if conn.execute(Q["delete_finished"], (str(job_id),)).rowcount == 0:
                raise self._refusal(conn, job_id, "delete")
            conn.execute(Q["delete_attempts"], (str(job_id),))

    def purge(self, older_than: timedelta, states: Iterable[JobState | str] | None = None) -> int:
        chosen = purge_states(older_than, states)
        cutoff = time.time() - older_than.total_seconds()
        deleted = 0
        for state in chosen:
            after = ""
            while True:
                # Each batch is its own short transaction, so workers wait at most one batch.
                with self._write() as conn:
                    params = {"state": state, "after": after, "limit": _BATCH, "cutoff": cutoff}
                    candidates = Q["purge_candidates"].format(jobs_in_state=jobs_in_state(state))
                    rows = conn.execute(candidates, params).fetchall()
                    if not rows:
                        break
                    old = [(r[0],) for r in rows if r[1]]
                    conn.executemany(Q["delete_attempts"], old)
                    conn.executemany(Q["delete_finished"], old)
                    deleted += len(old)
                    after = rows[-1][0]
        return deleted

    def pause(self, queue: str) -> None:
        with self._write() as conn:
            conn.execute(Q["set_paused"], (validation.queue_name(queue), 1))

    def resume(self, queue: str) -> None:
        with self._write() as conn:
            conn.execute(Q["set_paused"], (validation.queue_name(queue), 0))

    def workers(self) -> list[WorkerInfo]:
        cutoff = time.time() - self.settings.worker_stale_after
        with self._read() as conn:
            rows = conn.execute(Q["workers"], (cutoff,)).fetchall()
        return [
            WorkerInfo(
                id=r[0],
                host=r[1],
                pid=r[2],
                queues=() if r[3] is None else tuple(json.loads(r[3])),
                started_at=_dt(r[4]),
                last_seen_at=_dt(r[5]),
                current_job_id=r[6],
            )
            for r in rows
        ]


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (``executescript`` would commit on its own)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()
