"""The SQLite backend: durq's embedded default. One file, many processes and threads.

How it stays safe and fast (the connection and its transactions: ``sqlite_connection.py``):
- Claim is one ``UPDATE … RETURNING`` whose inner ``SELECT`` seeks, per queue, into
  ``durq_jobs_ready``, a partial index of queued rows in claim order, so finished rows never
  slow it down.
- Rows become ``Job`` objects only after COMMIT: decoding JSON and times inside the
  transaction would hold the write lock longer for every other worker.
- Idle workers notice other connections' commits through ``PRAGMA data_version``.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

from durq import codec, storage
from durq.backends._common import (
    KnownQueues,
    attempt_from_row,
    bulk_finder,
    completed,
    job_from_row,
    new_jobs,
    retry_columns,
    unix_time,
    worker_from_row,
)
from durq.backends._sql import load_queries
from durq.backends.lazy_job import lazy_job
from durq.backends.sqlite_connection import SQLiteConnection, parse_url, wrapped
from durq.backends.sqlite_wakeups import SETTLE, FileWatch
from durq.errors import InvalidJob
from durq.ids import new_job_id
from durq.job import FINISHED_STATES, Attempt, Job, JobState, Outcome, WorkerInfo
from durq.queue import JobInsights, JobQueue, Progress, QueueSettings

__all__ = ["SQLiteQueue", "parse_url"]

Q = load_queries("sqlite_queries.sql")

_BATCH = 500  # rows per transaction for bulk admin actions and purge
_LONG_BACKLOG = 5000  # queued jobs from which list_jobs walks ids instead of sorting them

Row = tuple[Any, ...]  # a durq_jobs row as sqlite3 returns it (SELECT * column order)


def _job(row: Sequence[Any]) -> Job:
    return job_from_row(row, unix_time)


def _claim_order(row: Row) -> tuple[int, float, str]:
    return -row[4], row[5], row[0]


# Where list_jobs finds one state's jobs: the partial index that holds just them (see the
# note atop sqlite_queries.sql). The state is a JobState value, never user text.
_STATE_SOURCE = {
    JobState.QUEUED: "durq_jobs INDEXED BY durq_jobs_ready WHERE state = 'queued'",
    JobState.RUNNING: "durq_jobs INDEXED BY durq_jobs_lease WHERE state = 'running'",
    **{
        s: f"durq_jobs INDEXED BY durq_jobs_finished WHERE state = '{s.value}'"
        for s in FINISHED_STATES
    },
}


def _renders_json_as_sent() -> bool:
    """Whether this SQLite gives a JSON element back (``->``, SQLite 3.38 and later) as the
    very text it was sent as, for values of every kind ``codec.encode`` writes: then a batch
    of payloads can travel as one JSON text. Checked once, against the library in use."""
    samples = [
        '{"a":1,"b":[1.5,-0.0,1e+300,12345678901234567890123]}',
        '"quote \\" back \\\\ nl \\n tab \\t ctrl \\u0000 \\u2028 é 中 🎉"',
        "null",
        "true",
        "[]",
        "{}",
        "0.30000000000000004",
    ]
    text = "[" + ",".join(f'["{n}",{sample}]' for n, sample in enumerate(samples)) + "]"
    try:
        with closing(sqlite3.connect(":memory:")) as conn:
            rows = conn.execute("SELECT value ->> 0, value -> 1 FROM json_each(?)", (text,))
            back = [value for _, value in rows]
    except sqlite3.Error:
        return False
    return back == samples


_JSON_ROWS = _renders_json_as_sent()


_NO_RETRY = tuple(retry_columns(None).values())


def _row_tail(new: storage.NewJobs, now: float) -> Row:
    """``insert_job``'s parameters after the id, the queue and the payload."""
    retry = _NO_RETRY if new.retry is None else tuple(retry_columns(new.retry).values())
    common = (new.max_attempts, new.timeout, new.dedupe_key, now, now, new.task, *retry)
    return (new.priority, now + new.delay, *common)


def _lone_insert(*optional: str) -> str:
    """An insert of one job without a dedupe key naming, of the columns that may be NULL, only
    ``optional``: Python's sqlite3 binds a None through its adapter lookup, which raises and
    clears an AttributeError each time (five NULLs were a tenth of a lone enqueue's CPU)."""
    columns = ["id", "queue", "payload", "priority", "run_at", "max_attempts", "timeout"]
    columns += ["created_at", "updated_at", *optional]
    marks = ", ".join("?" * len(columns))
    return (
        f"INSERT INTO durq_jobs (state, attempts, {', '.join(columns)}) "
        f"VALUES ('queued', 0, {marks})"
    )


_RETRY_COLUMNS = tuple(retry_columns(None))
_LONE_INSERT = {  # by (no task, no retry policy)
    (True, True): _lone_insert(),
    (False, True): _lone_insert("task"),
    (True, False): _lone_insert(*_RETRY_COLUMNS),
    (False, False): _lone_insert("task", *_RETRY_COLUMNS),
}


def _enqueued(
    new: storage.NewJobs, job_id: str | None, payload: Any, now: float
) -> tuple[Any, ...]:
    """The fields, in ``Job``'s order, of a job of ``new`` as stored at ``now``."""
    created = unix_time(now)
    run_at = unix_time(now + new.delay) if new.delay else created
    return (
        job_id,
        new.queue,
        payload,
        JobState.QUEUED,
        new.priority,
        run_at,
        0,  # attempts
        new.max_attempts,
        new.timeout,
        new.dedupe_key,
        None,  # worker_id
        None,  # lease_expires_at
        None,  # lease_token
        None,  # last_error
        new.task,
        None,  # result
        created,  # created_at
        created,  # updated_at
        new.retry,
    )


class SQLiteQueue(JobQueue, JobInsights):
    def __init__(self, url: str, settings: QueueSettings) -> None:
        super().__init__(url, settings)
        self.db = SQLiteConnection(url, create=settings.create)
        self._known_queues = KnownQueues()
        self._watch: FileWatch | None = None  # made by the first wait_for_change
        self._waiting = threading.local()  # each waiting thread's last data_version

    @property
    def path(self) -> Path:
        """The database file."""
        return self.db.path

    def close(self) -> None:
        self.db.close()
        if self._watch is not None:
            self._watch.close()

    # -- producers ---------------------------------------------------------------------------

    def _insert(self, new: storage.NewJobs) -> list[Job]:
        if len(new.ids) == 1 and new.dedupe_key is None and self._known_queues.knows(new.queue):
            return [self._insert_alone(new, new.ids[0], new.payloads[0])]
        now = time.time()
        with self.db.write() as conn:
            stored = self._insert_in(conn, new, now)
        self._known_queues.remember([new.queue])
        return stored if isinstance(stored, list) else [_job(stored)]

    def _insert_one(self, checked: storage.NewJobs, payload: str) -> Job:
        if not self._known_queues.knows(checked.queue):
            return super()._insert_one(checked, payload)
        return self._insert_alone(checked, new_job_id(), payload)

    def _insert_alone(self, new: storage.NewJobs, job_id: str, payload: str) -> Job:
        """The common enqueue: one row into a registered queue, with nothing to look up
        first, is one statement and needs no BEGIN or COMMIT of its own."""
        now = time.time()
        row: Row = (job_id, new.queue, payload, new.priority, now + new.delay)
        row += (new.max_attempts, new.timeout, now, now)
        if new.task is not None:
            row += (new.task,)
        if new.retry is not None:
            row += tuple(retry_columns(new.retry).values())
        self.db.write_alone(_LONE_INSERT[new.task is None, new.retry is None], row)
        return lazy_job(job_id, lambda: _enqueued(new, job_id, codec.decode_own(payload), now))

    def _insert_periodic(self, new: storage.NewJobs, name: str, slot: datetime) -> Job | None:
        now = time.time()
        with self.db.write() as conn:
            taken = conn.execute(Q["take_periodic_slot"], (name, slot.timestamp())).rowcount
            if not taken:
                return None
            stored = self._insert_in(conn, new, now)
        self._known_queues.remember([new.queue])
        return stored[0] if isinstance(stored, list) else _job(stored)

    def _insert_in(
        self,
        conn: sqlite3.Connection | sqlite3.Cursor,
        new: storage.NewJobs,
        now: float,
        *,
        register: bool = False,
    ) -> list[Job] | Row:
        """Store ``new``'s jobs in the open transaction: the jobs, or the live job holding
        the dedupe key."""
        unknown = [new.queue] if register else self._known_queues.unknown({new.queue})
        for queue in unknown:
            conn.execute(Q["register_queue"], (queue,))
        if new.dedupe_key is not None:
            found = conn.execute(Q["find_live_duplicate"], (new.queue, new.dedupe_key))
            existing: Row | None = found.fetchone()
            if existing is not None:
                return existing
        if len(new.ids) > 1 and _JSON_ROWS:
            # One statement for the batch: SQLite reads the ids and payloads from one JSON
            # text in C, where binding sixteen values a row from Python cost twice as much.
            rows = ",".join(
                f'["{job_id}",{text}]' for job_id, text in zip(new.ids, new.payloads, strict=True)
            )
            shared = {
                "queue": new.queue,
                "priority": new.priority,
                "run_at": now + new.delay,
                "max_attempts": new.max_attempts,
                "timeout": new.timeout,
                "dedupe_key": new.dedupe_key,
                "now": now,
                "task": new.task,
                **retry_columns(new.retry),
            }
            conn.execute(Q["insert_jobs_json"], {**shared, "rows": f"[{rows}]"})
        elif len(new.ids) == 1:
            conn.execute(Q["insert_job"], self._job_rows(new, now)[0])  # no executemany set-up
        else:
            conn.executemany(Q["insert_job"], self._job_rows(new, now))
        return self._stored_jobs(new, now)

    @staticmethod
    def _job_rows(new: storage.NewJobs, now: float) -> list[Row]:
        """``insert_job``'s parameters for each of ``new``'s jobs."""
        tail = _row_tail(new, now)
        return [
            (job_id, new.queue, text, *tail)
            for job_id, text in zip(new.ids, new.payloads, strict=True)
        ]

    @staticmethod
    def _stored_jobs(new: storage.NewJobs, now: float) -> list[Job]:
        """``new``'s jobs as stored at ``now``, built without reading them back: they carry
        the payloads as stored, not the caller's objects (one decode for the whole batch, and
        one datetime for all: per-job costs add up at 1,000 a batch)."""
        texts = new.payloads
        stored = codec.decode_own(f"[{','.join(texts)}]")
        return new_jobs(new.ids, stored, _enqueued(new, None, None, now))

    # -- the application's own connection to the queue's file ------------------------------

    def _app_cursor(self, connection: Any) -> sqlite3.Cursor:
        """A cursor on the application's connection, if it is to this queue's file."""
        if not isinstance(connection, sqlite3.Connection):
            raise InvalidJob(
                f"the connection must be an sqlite3.Connection to {self.path}, "
                f"not {type(connection).__name__}"
            )
        try:
            files = {name: file for _, name, file in connection.execute("PRAGMA database_list")}
        except sqlite3.Error as exc:
            raise InvalidJob(f"the application's connection cannot be used: {exc}") from exc
        main = files.get("main") or ""
        if not main or Path(main).resolve() != self.path.resolve():
            raise InvalidJob(
                f"the application's connection is to {main or 'a memory database'}, not to "
                f"the queue's file {self.path}"
            )
        cursor = connection.cursor()
        cursor.row_factory = None  # rows as tuples, whatever the application set
        return cursor

    def _insert_external(self, connection: Any, new: storage.NewJobs) -> list[Job]:
        cursor = self._app_cursor(connection)
        try:
            # The queue is registered each time: the application may roll back, and a
            # registration remembered here would then be missing.
            stored = self._insert_in(cursor, new, time.time(), register=True)
        except sqlite3.Error as exc:
            raise wrapped(self.path, exc) from exc
        finally:
            cursor.close()
        return stored if isinstance(stored, list) else [_job(stored)]

    def _complete_external(
        self, connection: Any, settlement: storage.Settlement
    ) -> storage.Changed:
        cursor = self._app_cursor(connection)
        job, now = settlement.job, time.time()
        try:
            params = (settlement.result, now, job.id, job.lease_token)
            row: Row | None = cursor.execute(Q["complete"], params).fetchone()
            if row is None:
                current = cursor.execute(Q["state_of"], (job.id,)).fetchone()
                return None if current is None else JobState(current[0])
            finish = (now, Outcome.SUCCEEDED, None, job.id, row[6])
            cursor.execute(Q["finish_attempt"], finish)
        except sqlite3.Error as exc:
            raise wrapped(self.path, exc) from exc
        finally:
            cursor.close()
        return _job(row)

    def _import(self, jobs: Sequence[tuple[Job, str]], progress: Progress) -> int:
        now = time.time()
        rows = [
            (
                job.id,
                job.queue,
                text,
                job.priority,
                job.run_at.timestamp(),
                job.attempts,
                job.max_attempts,
                job.timeout,
                job.dedupe_key,
                job.created_at.timestamp(),
                now,
                job.task,
                *retry_columns(job.retry).values(),
            )
            for job, text in jobs
        ]
        with self.db.write() as conn:
            registered = self._known_queues.unknown({job.queue for job, _ in jobs})
            for queue in registered:
                conn.execute(Q["register_queue"], (queue,))
            added = 0
            for start in range(0, len(rows), _BATCH):
                chunk = rows[start : start + _BATCH]
                added += sum(conn.execute(Q["import_job"], row).rowcount for row in chunk)
                progress(len(chunk))
        self._known_queues.remember(registered)
        return added

    # -- workers -----------------------------------------------------------------------------

    def _claim_in(self, conn: sqlite3.Connection, request: storage.ClaimRequest) -> list[Row]:
        self.db.claims(conn)
        now = time.time()
        if conn.execute(Q["any_lease_expired"], {"now": now}).fetchone() is not None:
            conn.execute(Q["close_lost_attempts"], {"now": now})
            conn.execute(Q["rescue_lost_jobs"], {"now": now})
        params: dict[str, Any] = {
            "worker_id": request.worker_id,
            "until": now + request.lease,
            "now": now,
            "limit": request.limit,
            "claim_id": request.claim_id,
        }
        queues = request.queues
        if queues is None:
            # Every job's queue is registered. Naming them makes the common case, one queue,
            # the cheapest claim: one seek and no sort of candidates from several queues.
            queues = tuple(r[0] for r in conn.execute(Q["active_queues"]))
            if not queues:
                return []
        if len(queues) == 1:
            statement, params["queue"] = Q["claim_one"], queues[0]
        else:
            statement, params["queues"] = Q["claim_from"], json.dumps(queues)
        rows: list[Row] = conn.execute(statement, params).fetchall()
        if rows:
            conn.executemany(
                Q["start_attempt"], [(r[0], r[6], request.worker_id, now) for r in rows]
            )
            rows.sort(key=_claim_order)  # RETURNING gives no order
        return rows

    def _claim(self, request: storage.ClaimRequest) -> list[Job]:
        with self.db.write() as conn:
            rows = self._claim_in(conn, request)
        return [_job(r) for r in rows]

    def _claimed_by(self, worker_id: str, claim_ids: Sequence[str]) -> list[Job]:
        params = {"worker_id": worker_id, "claims": json.dumps(list(claim_ids))}
        with self.db.read() as conn:
            rows = conn.execute(Q["claimed_by"], params).fetchall()
        return sorted((_job(r) for r in rows), key=lambda j: j.id)

    def _heartbeat(self, jobs: Sequence[Job], lease: float) -> list[storage.Changed]:
        now = time.time()
        params = {
            "until": now + lease,
            "now": now,
            "leases": json.dumps([[j.id, j.lease_token] for j in jobs]),
        }
        with self.db.write() as conn:
            renewed = {r[0]: r for r in conn.execute(Q["heartbeat"], params)}
            missing = [j.id for j in jobs if j.id not in renewed]
            states = {}
            if missing:
                states = dict(conn.execute(Q["states_of"], {"ids": json.dumps(missing)}))
        return [_job(renewed[j.id]) if j.id in renewed else _state(states.get(j.id)) for j in jobs]

    def _settle_in(
        self, conn: sqlite3.Connection, settlement: storage.Settlement, now: float
    ) -> Row | None:
        """Write one failure or release: the job's new row, or None when refused."""
        job, outcome = settlement.job, settlement.outcome
        if outcome is Outcome.RELEASED:
            row: Row | None = conn.execute(
                Q["release"], (now, now, job.id, job.lease_token)
            ).fetchone()
        else:
            params = {
                "retry": outcome is Outcome.FAILED,
                "backoff": settlement.backoff,
                "error": settlement.error,
                "now": now,
                "id": job.id,
                "token": job.lease_token,
            }
            row = conn.execute(Q["fail"], params).fetchone()
        if row is not None:
            attempt = row[6] + 1 if outcome is Outcome.RELEASED else row[6]
            conn.execute(Q["finish_attempt"], (now, outcome, settlement.error, job.id, attempt))
        return row

    def _complete_all(self, conn: sqlite3.Connection, batch: str, now: float) -> set[str]:
        """Write every success of a batch (``batch``: ``[id, token, result]`` triples as JSON,
        made by ``_settle``) with two statements, whatever its size; the ids of the jobs
        written (the others were refused)."""
        done = conn.execute(Q["complete_many"], {"now": now, "batch": batch}).fetchall()
        if done:
            ended = json.dumps([[job_id, attempt] for job_id, attempt in done])
            conn.execute(Q["finish_attempts_succeeded"], {"now": now, "done": ended})
        return {job_id for job_id, _ in done}

    def _settle(
        self, settlements: Sequence[storage.Settlement], claim: storage.ClaimRequest | None
    ) -> tuple[list[storage.Changed], list[Job]]:
        now = time.time()
        successes = [s for s in settlements if s.outcome is Outcome.SUCCEEDED]
        # Made before BEGIN: other workers wait for the lock while this transaction holds it.
        batch = json.dumps([[s.job.id, s.job.lease_token, s.result] for s in successes])
        with self.db.write() as conn:
            done_ids = self._complete_all(conn, batch, now) if successes else set()
            others = {  # failures and releases, rarer: one by one
                i: self._settle_in(conn, s, now)
                for i, s in enumerate(settlements)
                if s.outcome is not Outcome.SUCCEEDED
            }

            def written(i: int, s: storage.Settlement) -> bool:
                return s.job.id in done_ids if i not in others else others[i] is not None

            refused = [s.job.id for i, s in enumerate(settlements) if not written(i, s)]
            states = {}
            if refused:
                states = dict(conn.execute(Q["states_of"], {"ids": json.dumps(refused)}))
            claimed = self._claim_in(conn, claim) if claim and not refused else []
        finished_at = unix_time(now)
        changed: list[storage.Changed] = []
        for i, s in enumerate(settlements):
            row = others.get(i)
            if not written(i, s):
                changed.append(_state(states.get(s.job.id)))
            elif row is not None:
                changed.append(_job(row))
            else:
                # Built, not read back: a completion changes only these fields.
                changed.append(completed(s.job, codec.decode(s.result), finished_at))
        return changed, [_job(r) for r in claimed]

    def _register_worker(
        self, worker_id: str, host: str, pid: int, queues: tuple[str, ...] | None
    ) -> None:
        now = time.time()
        listed = None if queues is None else json.dumps(list(queues))
        with self.db.write() as conn:
            conn.execute(
                Q["worker_heartbeat"],
                {"id": worker_id, "host": host, "pid": pid, "queues": listed, "now": now},
            )
            conn.execute(
                Q["forget_long_gone_workers"], (now - 10 * self.settings.worker_stale_after,)
            )

    def _unregister_worker(self, worker_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(Q["worker_stopped"], (worker_id,))

    def wait_for_change(self, timeout: float, *, finished: bool = False) -> None:
        # Any commit may have made a job ready or finished one: ``finished`` changes nothing.
        # PRAGMA data_version moves when another connection commits, and ``db.commits`` when
        # this one does; the watch sleeps until a file of the database is written (see
        # sqlite_wakeups.py). Each waiting thread keeps the version it last saw, so two
        # waiters never take each other's news.
        db = self.db
        db.reset_if_forked()
        watch = self._file_watch()
        seen = getattr(self._waiting, "version", None)
        deadline = time.monotonic() + timeout
        settling: list[float] = []
        while True:
            watch.drain()
            with db.lock:
                version = (db.connection().execute("PRAGMA data_version").fetchone()[0], db.commits)
            self._waiting.version = version
            if version != seen:
                # Changed; or this thread's first look, which cannot know what it missed
                # (as a new LISTEN on PostgreSQL): a possible change either way.
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if settling:
                time.sleep(min(settling.pop(0), left))
            elif watch.wait(left) and not watch.polling:
                settling = list(SETTLE)

    def _file_watch(self) -> FileWatch:
        if self._watch is None:
            self._watch = FileWatch(self.path)
        return self._watch

    # -- admin -------------------------------------------------------------------------------

    def _get(self, job_id: str) -> Job | None:
        with self.db.read() as conn:
            row = conn.execute(Q["get"], (job_id,)).fetchone()
        return None if row is None else _job(row)

    def _id_neighbours(self, job_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        with self.db.read() as conn:
            rows = conn.execute(Q["id_neighbours"], (json.dumps(list(job_ids)),)).fetchall()
        return {row[0]: (row[1], row[2]) for row in rows}

    def _ids_starting(self, prefix: str, limit: int) -> list[str]:
        # A range on the primary key: every id character sorts before "g".
        with self.db.read() as conn:
            rows = conn.execute(Q["ids_starting"], (prefix, prefix + "g", limit)).fetchall()
        return [row[0] for row in rows]

    def _list_jobs(
        self,
        state: JobState | None,
        queue: str | None,
        limit: int,
        before: str | None,
        task: str | None,
    ) -> list[Job]:
        where: list[str] = []
        params: list[Any] = []
        if task is not None:
            # A task's jobs, newest first, straight from its index; the other filters are
            # checked row by row (``+`` keeps the planner on this index).
            source = "durq_jobs INDEXED BY durq_jobs_task WHERE task = ?"
            params.append(task)
            if state is not None:
                where.append(f"+state = '{state.value}'")
        elif state is None:
            source = "durq_jobs WHERE 1"
        else:
            source = _STATE_SOURCE[state]
        if queue is not None:
            # With no state, ``+queue`` keeps the planner on the primary key (already in id
            # order) instead of sorting a whole queue's queued rows out of durq_jobs_ready.
            where.append("queue = ?" if state is not None and task is None else "+queue = ?")
            params.append(queue)
        if before is not None:
            where.append("id < ?")
            params.append(before)
        with self.db.read() as conn:
            if state is JobState.QUEUED and task is None:
                backlog = {"enough": _LONG_BACKLOG, "queue": queue}
                if conn.execute(Q["long_backlog"], backlog).fetchone()[0]:
                    # durq_jobs_ready would sort the whole backlog by id to find one page;
                    # walking the ids newest first finds it at once (``+state`` keeps the
                    # planner off the partial index).
                    source = "durq_jobs WHERE +state = 'queued'"
            sql = f"SELECT * FROM {source}" + "".join(f" AND {term}" for term in where)
            sql += " ORDER BY id DESC LIMIT ?"
            rows = conn.execute(sql, (*params, limit)).fetchall()
        return [_job(r) for r in rows]

    def _attempts(self, job_id: str) -> list[Attempt] | None:
        with self.db.read() as conn:
            if conn.execute(Q["state_of"], (job_id,)).fetchone() is None:
                return None
            rows = conn.execute(Q["attempts"], (job_id,)).fetchall()
        return [attempt_from_row(r, unix_time) for r in rows]

    def _counts(self) -> storage.QueueCounts:
        now = time.time()
        with self.db.read() as conn:
            paused = {name: bool(flag) for name, flag in conn.execute(Q["queues"])}
            counts = conn.execute(Q["counts"]).fetchall()
            oldest = dict(conn.execute(Q["oldest_ready"], (now,)).fetchall())
            stale_before = now - self.settings.worker_stale_after
            (workers,) = conn.execute(Q["live_worker_count"], (stale_before,)).fetchone()
        return storage.QueueCounts(paused, counts, oldest, workers, now)

    def _live_jobs_by_task(self) -> list[tuple[str, str, int]]:
        with self.db.read() as conn:
            return conn.execute(Q["live_jobs_by_task"]).fetchall()

    def _finished_by_step(self, step: float, n: int) -> tuple[float, list[tuple[int, str, int]]]:
        start = (time.time() // step + 1 - n) * step
        with self.db.read() as conn:
            rows = conn.execute(Q["finished_by_step"], {"start": start, "step": step}).fetchall()
        return start, rows

    def _attempt_durations(self, bounds: Sequence[float]) -> list[tuple[str, int, int, float]]:
        with self.db.read() as conn:
            # SQLite's JSON has no Infinity; no attempt takes 1e308 seconds either.
            finite = [math.copysign(min(abs(b), 1e308), b) for b in bounds]
            rows = conn.execute(Q["attempt_durations"], {"bounds": json.dumps(finite)})
            return rows.fetchall()

    def _resubmit(self, job_id: str) -> storage.Changed:
        now = time.time()
        with self.db.write() as conn:
            try:
                row = conn.execute(Q["resubmit"], (now, now, job_id)).fetchone()
            except sqlite3.IntegrityError:
                raise storage.KeyHeld from None
            return self._or_state(conn, row, job_id)

    def _cancel(self, job_id: str) -> storage.Changed:
        now = time.time()
        with self.db.write() as conn:
            row = conn.execute(Q["cancel"], {"now": now, "id": job_id}).fetchone()
            if row is not None:
                conn.execute(Q["close_cancelled_attempts"], {"now": now, "ids": f'["{job_id}"]'})
            return self._or_state(conn, row, job_id)

    def _delete(self, job_id: str) -> storage.Changed:
        with self.db.write() as conn:
            row = conn.execute(Q["delete_finished"], (job_id,)).fetchone()
            if row is not None:
                conn.execute(Q["delete_attempts"], (job_id,))
            return self._or_state(conn, row, job_id)

    @staticmethod
    def _or_state(conn: sqlite3.Connection, row: Row | None, job_id: str) -> storage.Changed:
        """The changed row as a Job, or (nothing changed) the job's state, or None."""
        if row is not None:
            return _job(row)
        current = conn.execute(Q["state_of"], (job_id,)).fetchone()
        return None if current is None else JobState(current[0])

    def _resubmit_all(self, state: JobState, queue: str | None, progress: Progress) -> int:
        return self._in_batches(state, queue, Q["resubmit_chosen"], progress)

    def _cancel_all(self, state: JobState, queue: str | None, progress: Progress) -> int:
        return self._in_batches(state, queue, Q["cancel_chosen"], progress)

    def _in_batches(
        self, state: JobState, queue: str | None, change: str, progress: Progress
    ) -> int:
        """Apply ``change`` to every job of ``state`` (and ``queue``), a batch a transaction."""
        finder = Q[bulk_finder(state, queue)]
        done, after = 0, ""
        while True:
            params = {"state": state.value, "queue": queue, "after": after, "limit": _BATCH}
            with self.db.write() as conn:
                ids = [r[0] for r in conn.execute(finder, params)]
                if not ids:
                    return done
                chosen = {"now": time.time(), "state": state.value, "ids": json.dumps(ids)}
                changed = conn.execute(change, chosen).rowcount
                if state is JobState.RUNNING:
                    conn.execute(Q["close_cancelled_attempts"], chosen)
                if state in (JobState.QUEUED, JobState.RUNNING) and changed < len(ids):
                    # Some chosen jobs stayed where they were (``change`` keeps them): they
                    # would be chosen again forever. No caller does this; refuse, not spin.
                    raise RuntimeError(f"a bulk action on {state} jobs must change their state")
            done += changed
            progress(changed)
            after = ids[-1]

    def _purge(self, older_than: float, states: Sequence[JobState], progress: Progress) -> int:
        # On a full disk deleting needs room in the WAL: give its space back first (and
        # after, so what was freed is usable at once).
        self.db.checkpoint()
        cutoff = time.time() - older_than
        deleted = 0
        for state in states:
            after = ""
            while True:
                # Each batch is its own short transaction, so workers wait at most one batch.
                with self.db.write() as conn:
                    params = {
                        "state": state.value,
                        "after": after,
                        "limit": _BATCH,
                        "cutoff": cutoff,
                    }
                    rows = conn.execute(Q["purge_candidates"], params).fetchall()
                    if not rows:
                        break
                    old = [(r[0],) for r in rows if r[1]]
                    conn.executemany(Q["delete_attempts"], old)
                    conn.executemany(Q["delete_job"], old)
                    deleted += len(old)
                    after = rows[-1][0]
                progress(len(old))
        self.db.checkpoint()
        return deleted

    def _set_paused(self, queue: str, paused: bool) -> None:
        with self.db.write() as conn:
            conn.execute(Q["set_paused"], (queue, int(paused)))

    def _workers(self, stale_after: float) -> list[WorkerInfo]:
        with self.db.read() as conn:
            rows = conn.execute(Q["workers"], (time.time() - stale_after,)).fetchall()
        return [worker_from_row(r, unix_time) for r in rows]


def _state(value: str | None) -> JobState | None:
    return None if value is None else JobState(value)
