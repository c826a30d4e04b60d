"""The PostgreSQL backend: durq on a server, for producers and workers on many machines.

How it stays safe and fast (the pool, migrations and LISTEN: ``postgres_connection.py``):
- Claim is one call of ``durq_claim``, a function of the schema (so the server keeps it
  parsed, and often planned, for the life of a connection): it picks the next ready jobs
  with ``FOR UPDATE SKIP LOCKED`` over a partial index of queued rows in claim order, marks
  them running and starts their attempts. Concurrent claimers skip each other's rows
  instead of waiting on them, and finished rows never slow the claim down.
- Every time comes from the server's clock (``now()``), never the client's. Leases are
  written by one machine and compared by another (a rescuing claimer on a second host);
  with one clock, skew between worker machines cannot expire a live lease early or keep a
  dead worker's job locked late.
- Enqueue, release, a retrying fail, resubmit and resume send ``NOTIFY durq_jobs`` in their
  own transaction, so it is delivered exactly when the change is visible. Idle workers wait
  on a dedicated ``LISTEN`` connection and wake within a millisecond or so.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from durq import codec, storage
from durq.backends._common import (
    KnownQueues,
    as_is,
    attempt_from_row,
    bulk_finder,
    completed,
    job_from_row,
    retry_columns,
    worker_from_row,
)
from durq.backends._sql import load_queries
from durq.backends.postgres_connection import (
    FINISHED_CHANNEL,
    READY_CHANNEL,
    Connection,
    Cursor,
    PostgresConnection,
    describe_url,
    external_cursor,
    external_cursor_async,
    pg_errors,
)
from durq.errors import BackendError, InvalidJob
from durq.job import FINISHED_STATES, Attempt, Job, JobState, Outcome, WorkerInfo
from durq.queue import JobInsights, JobQueue, Progress, QueueSettings

__all__ = ["PostgresQueue", "describe_url"]

Q = load_queries("postgres_queries.sql")

_BATCH = 500  # rows per transaction for bulk admin actions and purge
# A worker's settle-and-claim transactions look for lost jobs at most this often (seconds).
# Planning the rescue statement cost 0.3-1 ms of server CPU a transaction (about 30 jobs);
# a lost lease is found at most this much later than at every claim. A plain claim (claim,
# claim_many, a settle with no outcomes) still rescues every time.
_RESCUE_EVERY = 1.0
_SETTLE = {
    Outcome.SUCCEEDED: Q["complete"],
    Outcome.FAILED: Q["fail"],
    Outcome.UNPROCESSABLE: Q["fail"],
    Outcome.RELEASED: Q["release"],
}


def _count(cursor: Any) -> int:
    """The count a ``SELECT count(*)`` statement returned."""
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def _job(row: Sequence[Any]) -> Job:
    return job_from_row(row, as_is)


class PostgresQueue(JobQueue, JobInsights):
    def __init__(self, url: str, settings: QueueSettings) -> None:
        super().__init__(url, settings)
        self.db = PostgresConnection(url, listen_url=settings.listen_url, create=settings.create)
        self.where = self.db.where
        self._known_queues = KnownQueues()
        self._rescued_at = -_RESCUE_EVERY  # time.monotonic() of the last rescue by _settle

    def close(self) -> None:
        self.db.close()

    # -- producers ---------------------------------------------------------------------------

    def _insert(self, new: storage.NewJobs) -> list[Job]:
        if len(new.ids) == 1 and new.dedupe_key is None and self._known_queues.knows(new.queue):
            # The common enqueue, with nothing to register or look up first: the job and its
            # wake-up in one statement and one round trip.
            row = self.db.statement(Q["enqueue_one"], _one_job_params(new), producing=True)
            return [_job(row)]
        with self.db.transaction(producing=True, pipelined=True) as conn:
            rows = self._insert_in(conn, new)
        self._known_queues.remember([new.queue])
        return [_job(r) for r in rows]

    def _insert_periodic(self, new: storage.NewJobs, name: str, slot: datetime) -> Job | None:
        with self.db.transaction(producing=True, pipelined=True) as conn:
            taken = conn.execute(Q["take_periodic_slot"], {"name": name, "slot": slot})
            if taken.fetchone() is None:
                return None
            rows = self._insert_in(conn, new)
        self._known_queues.remember([new.queue])
        return _job(rows[0])

    def _insert_in(
        self, conn: Connection | Cursor, new: storage.NewJobs, *, register: bool = False
    ) -> list[Any]:
        """Store ``new``'s jobs in the open transaction; their rows, or the row of the live
        job holding the dedupe key. ``register``: register the queue whether or not this
        process did before (the application's transaction may yet roll back)."""
        unknown = [new.queue] if register else self._known_queues.unknown({new.queue})
        for queue in unknown:
            conn.execute(Q["register_queue"], {"queue": queue})
        params = _shared_params(new)
        if len(new.ids) == 1:
            one = _one_job_params(new)
            # A live job holding the key may finish between the insert that bumps into it
            # and the look-up; then the insert is simply tried again.
            while True:
                row = conn.execute(Q["insert_job"], one).fetchone()
                if row is not None:
                    rows = [row]
                    break
                existing = conn.execute(Q["find_live_duplicate"], one).fetchone()
                if existing is not None:
                    return [existing]
        else:
            many = {**params, "ids": list(new.ids), "payloads": list(new.payloads)}
            by_id = {r[0]: r for r in conn.execute(Q["insert_jobs"], many).fetchall()}
            rows = [by_id[job_id] for job_id in new.ids]
        conn.execute(Q["notify"], {"queue": new.queue})
        return rows

    # -- the application's own connection ----------------------------------------------------

    def _insert_external(self, connection: Any, new: storage.NewJobs) -> list[Job]:
        with external_cursor(connection, self.where) as cursor:
            # Its NOTIFY goes out when (and only if) the application commits.
            return [_job(r) for r in self._insert_in(cursor, new, register=True)]

    async def _insert_external_async(self, connection: Any, new: storage.NewJobs) -> list[Job]:
        if len(new.ids) != 1:
            raise InvalidJob("an async connection takes one job per enqueue")
        params = _one_job_params(new)
        async with external_cursor_async(connection, self.where) as cursor:
            await cursor.execute(Q["register_queue"], params)
            while True:
                row = await (await cursor.execute(Q["insert_job"], params)).fetchone()
                if row is None:
                    found = await cursor.execute(Q["find_live_duplicate"], params)
                    row = await found.fetchone()
                    if row is None:
                        continue  # the live job finished meanwhile: insert again
                    return [_job(row)]
                await cursor.execute(Q["notify"], params)
                return [_job(row)]

    def _complete_external(
        self, connection: Any, settlement: storage.Settlement
    ) -> storage.Changed:
        params = self._params(settlement)
        with external_cursor(connection, self.where) as cursor:
            row = cursor.execute(Q["complete"], params).fetchone()
            if row is not None:
                cursor.execute(Q["notify_finished"])
                return _job(row)
            current = cursor.execute(Q["state_of"], params).fetchone()
        return None if current is None else JobState(current[0])

    async def _complete_external_async(
        self, connection: Any, settlement: storage.Settlement
    ) -> storage.Changed:
        params = self._params(settlement)
        async with external_cursor_async(connection, self.where) as cursor:
            row = await (await cursor.execute(Q["complete"], params)).fetchone()
            if row is not None:
                await cursor.execute(Q["notify_finished"])
                return _job(row)
            current = await (await cursor.execute(Q["state_of"], params)).fetchone()
        return None if current is None else JobState(current[0])

    def _import(self, jobs: Sequence[tuple[Job, str]], progress: Progress) -> int:
        rows = [
            {
                "id": job.id,
                "queue": job.queue,
                "payload": text,
                "priority": job.priority,
                "run_at": job.run_at,
                "attempts": job.attempts,
                "max_attempts": job.max_attempts,
                "timeout": float(job.timeout),
                "dedupe_key": job.dedupe_key,
                "created_at": job.created_at,
                "task": job.task,
                **retry_columns(job.retry),
            }
            for job, text in jobs
        ]
        queues = {job.queue for job, _ in jobs}
        with self.db.transaction(producing=True) as conn, conn.cursor() as cur:
            registered = self._known_queues.unknown(queues)
            for queue in registered:
                conn.execute(Q["register_queue"], {"queue": queue})
            added = 0
            for start in range(0, len(rows), _BATCH):
                chunk = rows[start : start + _BATCH]
                cur.executemany(Q["import_job"], chunk)
                added += max(cur.rowcount, 0)
                progress(len(chunk))
            for queue in sorted(queues):
                conn.execute(Q["notify"], {"queue": queue})
        self._known_queues.remember(registered)
        return added

    # -- workers -----------------------------------------------------------------------------

    def _claim_in(
        self, conn: Connection, request: storage.ClaimRequest, *, rescue: bool = True
    ) -> list[Job]:
        if rescue:
            conn.execute(Q["rescue_lost_jobs"])
        params: dict[str, Any] = {
            "worker_id": request.worker_id,
            "lease": request.lease,
            "limit": request.limit,
            "claim_id": request.claim_id,
        }
        queues = request.queues
        if queues is None:
            # Every job's queue is registered. Named, the common case (one queue) walks that
            # queue's ready index in claim order; left to itself the planner may instead sort
            # every queued job once the statistics say few are queued (30 ms a claim with
            # 10,000 queued: a 4-process drain ran at 0.4x).
            queues = tuple(row[0] for row in conn.execute(Q["active_queues"]))
            if not queues:
                return []
        # One queue by name walks its own ready index; several go as an array.
        params["queue"], params["queues"] = (
            (queues[0], None) if len(queues) == 1 else (None, list(queues))
        )
        return [_job(r) for r in conn.execute(Q["claim"], params).fetchall()]

    def _claim(self, request: storage.ClaimRequest) -> list[Job]:
        with self.db.transaction(pipelined=True) as conn:
            return self._claim_in(conn, request)

    def _claimed_by(self, worker_id: str, claim_ids: Sequence[str]) -> list[Job]:
        params = {"worker_id": worker_id, "claims": list(claim_ids)}
        with self.db.transaction() as conn:
            rows = conn.execute(Q["claimed_by"], params).fetchall()
        return sorted((_job(r) for r in rows), key=lambda j: j.id)

    def _heartbeat(self, jobs: Sequence[Job], lease: float) -> list[storage.Changed]:
        params = {
            "lease": lease,
            "ids": [j.id for j in jobs],
            "tokens": [j.lease_token for j in jobs],
        }
        with self.db.transaction(pipelined=True) as conn:
            renewed = {r[0]: _job(r) for r in conn.execute(Q["heartbeat"], params)}
            states = self._states(conn, [j.id for j in jobs if j.id not in renewed])
        return [renewed.get(j.id) or states.get(j.id) for j in jobs]

    @staticmethod
    def _states(conn: Connection, ids: list[str]) -> dict[str, JobState]:
        if not ids:
            return {}
        rows = conn.execute(Q["states_of"], {"ids": ids}).fetchall()
        return {job_id: JobState(state) for job_id, state in rows}

    def _settle(
        self, settlements: Sequence[storage.Settlement], claim: storage.ClaimRequest | None
    ) -> tuple[list[storage.Changed], list[Job]]:
        successes = [s for s in settlements if s.outcome is Outcome.SUCCEEDED]
        batched = len(successes) > 1
        with self.db.transaction(pipelined=True) as conn:
            # Sent together, read together: one round trip for the whole batch, and the
            # successes (most of any batch) in one statement.
            cursors = {
                s.job.id: conn.execute(_SETTLE[s.outcome], self._params(s))
                for s in settlements
                if not (batched and s.outcome is Outcome.SUCCEEDED)
            }
            done: dict[str, datetime] = {}
            if batched:
                batch = {
                    "ids": [s.job.id for s in successes],
                    "tokens": [s.job.lease_token for s in successes],
                    "results": [s.result for s in successes],
                    "workers": [s.job.worker_id for s in successes],
                }
                done = dict(conn.execute(Q["complete_many"], batch).fetchall())
            written: list[Job | None] = []
            for s in settlements:
                if s.job.id in cursors:
                    row = cursors[s.job.id].fetchone()
                    written.append(None if row is None else _job(row))
                elif s.job.id in done:
                    # Built, not read back: a completion changes only these fields.
                    at = done[s.job.id]
                    written.append(completed(s.job, codec.decode(s.result), at))
                else:
                    written.append(None)
            missing = [s.job.id for s, job in zip(settlements, written, strict=True) if job is None]
            states = self._states(conn, missing)
            ends = {job.state for job in written if job is not None}
            for queue in sorted({j.queue for j in written if j and j.state is JobState.QUEUED}):
                conn.execute(Q["notify"], {"queue": queue})
            if ends & FINISHED_STATES:
                conn.execute(Q["notify_finished"])
            claimed = []
            if claim and not missing:
                claimed = self._claim_in(conn, claim, rescue=self._rescue_due())
        changed = [
            job if job is not None else states.get(s.job.id)
            for s, job in zip(settlements, written, strict=True)
        ]
        return changed, claimed

    def _rescue_due(self) -> bool:
        """Whether a settle's claim should look for lost jobs first (see _RESCUE_EVERY)."""
        now = time.monotonic()
        if now - self._rescued_at < _RESCUE_EVERY:
            return False
        self._rescued_at = now
        return True

    @staticmethod
    def _params(settlement: storage.Settlement) -> dict[str, Any]:
        job = settlement.job
        # The worker's id goes into the attempt's row: the outcome clears the job's.
        params: dict[str, Any] = {
            "id": job.id,
            "token": job.lease_token,
            "worker_id": job.worker_id,
        }
        if settlement.outcome is Outcome.SUCCEEDED:
            params["result"] = settlement.result
        elif settlement.outcome is not Outcome.RELEASED:
            params.update(
                retry=settlement.outcome is Outcome.FAILED,
                backoff=settlement.backoff,
                error=settlement.error,
                outcome=settlement.outcome.value,
            )
        return params

    def _register_worker(
        self, worker_id: str, host: str, pid: int, queues: tuple[str, ...] | None
    ) -> None:
        params = {
            "id": worker_id,
            "host": host,
            "pid": pid,
            "queues": None if queues is None else list(queues),
            "gone_after": 10 * self.settings.worker_stale_after,
        }
        with self.db.transaction(pipelined=True) as conn:
            conn.execute(Q["worker_heartbeat"], params)
            conn.execute(Q["forget_long_gone_workers"], params)

    def _unregister_worker(self, worker_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(Q["worker_stopped"], {"id": worker_id})

    def wait_for_change(self, timeout: float, *, finished: bool = False) -> None:
        self.db.wait_for_notify(FINISHED_CHANNEL if finished else READY_CHANNEL, timeout)

    # -- admin -------------------------------------------------------------------------------

    def _get(self, job_id: str) -> Job | None:
        with self.db.transaction(pipelined=True) as conn:
            row = conn.execute(Q["get"], {"id": job_id}).fetchone()
        return None if row is None else _job(row)

    def _id_neighbours(self, job_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        with self.db.transaction(pipelined=True) as conn:
            rows = conn.execute(Q["id_neighbours"], {"ids": list(job_ids)}).fetchall()
        return {row[0]: (row[1], row[2]) for row in rows}

    def _ids_starting(self, prefix: str, limit: int) -> list[str]:
        # A range on the primary key (COLLATE "C"): every id character sorts before "g".
        params = {"low": prefix, "high": prefix + "g", "limit": limit}
        with self.db.transaction(pipelined=True) as conn:
            rows = conn.execute(Q["ids_starting"], params).fetchall()
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
        terms = (("state = %s", state), ("queue = %s", queue), ("task = %s", task))
        for term, value in (*terms, ("id < %s", before)):
            if value is not None:
                where.append(term)
                params.append(value)
        sql = "SELECT * FROM durq_jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT %s"
        with self.db.transaction() as conn:
            rows = conn.execute(sql, (*params, limit)).fetchall()
        return [_job(r) for r in rows]

    def _attempts(self, job_id: str) -> list[Attempt] | None:
        with self.db.transaction() as conn:
            if conn.execute(Q["state_of"], {"id": job_id}).fetchone() is None:
                return None
            rows = conn.execute(Q["attempts"], {"id": job_id}).fetchall()
        return [attempt_from_row(r, as_is) for r in rows]

    @staticmethod
    def _now(conn: Connection) -> float:
        row = conn.execute(Q["now"]).fetchone()
        assert row is not None
        return float(row[0])

    def _counts(self) -> storage.QueueCounts:
        stale_after = {"stale_after": self.settings.worker_stale_after}
        with self.db.transaction() as conn:
            # One snapshot for all the counts, so they add up.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            now = self._now(conn)
            paused = {name: bool(flag) for name, flag in conn.execute(Q["queues"])}
            counts = conn.execute(Q["counts"]).fetchall()
            oldest = {name: float(t) for name, t in conn.execute(Q["oldest_ready"])}
            row = conn.execute(Q["live_worker_count"], stale_after).fetchone()
        return storage.QueueCounts(paused, counts, oldest, int(row[0]) if row else 0, now)

    def _live_jobs_by_task(self) -> list[tuple[str, str, int]]:
        with self.db.transaction() as conn:
            return conn.execute(Q["live_jobs_by_task"]).fetchall()

    def _finished_by_step(self, step: float, n: int) -> tuple[float, list[tuple[int, str, int]]]:
        with self.db.transaction() as conn:
            start = (self._now(conn) // step + 1 - n) * step
            rows = conn.execute(Q["finished_by_step"], {"start": start, "step": step})
            return start, rows.fetchall()

    def _attempt_durations(self, bounds: Sequence[float]) -> list[tuple[str, int, int, float]]:
        with self.db.transaction() as conn:
            return conn.execute(Q["attempt_durations"], {"bounds": list(bounds)}).fetchall()

    def _resubmit(self, job_id: str) -> storage.Changed:
        with self.db.transaction() as conn:
            try:
                row = conn.execute(Q["resubmit"], {"id": job_id}).fetchone()
            except pg_errors.UniqueViolation:
                raise storage.KeyHeld from None
            changed = self._or_state(conn, row, job_id)
            if isinstance(changed, Job):
                conn.execute(Q["notify"], {"queue": changed.queue})
            return changed

    def _cancel(self, job_id: str) -> storage.Changed:
        with self.db.transaction() as conn:
            row = conn.execute(Q["cancel"], {"id": job_id}).fetchone()
            if row is not None:
                conn.execute(Q["notify_finished"])
            return self._or_state(conn, row, job_id)

    def _delete(self, job_id: str) -> storage.Changed:
        with self.db.transaction() as conn:
            row = conn.execute(Q["delete_finished"], {"id": job_id}).fetchone()
            return self._or_state(conn, row, job_id)

    @staticmethod
    def _or_state(conn: Connection, row: Sequence[Any] | None, job_id: str) -> storage.Changed:
        """The changed row as a Job, or (nothing changed) the job's state, or None."""
        if row is not None:
            return _job(row)
        current = conn.execute(Q["state_of"], {"id": job_id}).fetchone()
        return None if current is None else JobState(current[0])

    def _resubmit_all(self, state: JobState, queue: str | None, progress: Progress) -> int:
        return self._in_batches(state, queue, Q["resubmit_batch"], progress, notify=True)

    def _cancel_all(self, state: JobState, queue: str | None, progress: Progress) -> int:
        return self._in_batches(state, queue, Q["cancel_batch"], progress, notify=False)

    def _in_batches(
        self, state: JobState, queue: str | None, change: str, progress: Progress, notify: bool
    ) -> int:
        """Apply ``change`` to every job of ``state`` (and ``queue``), a batch a transaction."""
        finder = Q[bulk_finder(state, queue)]
        done, after, previous = 0, "", None
        while True:
            params: dict[str, Any] = {"state": state.value, "queue": queue, "after": after}
            try:
                with self.db.transaction() as conn:
                    ids = [r[0] for r in conn.execute(finder, {**params, "limit": _BATCH})]
                    if not ids:
                        return done
                    if ids == previous:
                        # Queued and running jobs are found with no cursor: a change that
                        # left them where they were would find them again forever.
                        raise RuntimeError(f"a bulk action on {state} jobs must change them")
                    previous = ids
                    done_now = conn.execute(change, {**params, "ids": ids})
                    changed = (
                        done_now.rowcount if done_now.description is None else _count(done_now)
                    )
                    if notify and changed:
                        conn.execute(Q["notify"], {"queue": queue or ""})
            except BackendError as exc:
                # A producer took a dedupe key this batch was about to reuse: try it again.
                if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                    continue
                raise
            done += changed
            progress(changed)
            after = ids[-1]

    def _purge(self, older_than: float, states: Sequence[JobState], progress: Progress) -> int:
        deleted = 0
        for state in states:
            params = {"older_than": older_than, "limit": _BATCH, "state": state.value}
            after: str | None = ""
            while after is not None:
                # Each batch is its own short transaction, so workers wait at most one batch.
                with self.db.transaction() as conn:
                    row = conn.execute(Q["purge_batch"], {**params, "after": after}).fetchone()
                after, n = (row[0], int(row[1])) if row else (None, 0)
                deleted += n
                progress(n)
        return deleted

    def _set_paused(self, queue: str, paused: bool) -> None:
        with self.db.transaction() as conn:
            params = {"queue": queue, "paused": paused}
            conn.execute(Q["set_paused"], params)
            if not paused:
                conn.execute(Q["notify"], params)

    def _workers(self, stale_after: float) -> list[WorkerInfo]:
        with self.db.transaction() as conn:
            rows = conn.execute(Q["workers"], {"stale_after": stale_after}).fetchall()
        return [worker_from_row(r, as_is) for r in rows]


def _shared_params(new: storage.NewJobs) -> dict[str, Any]:
    """The insert's parameters that every job of ``new`` shares."""
    return {
        "queue": new.queue,
        "priority": new.priority,
        "delay": new.delay,
        "max_attempts": new.max_attempts,
        "timeout": new.timeout,
        "task": new.task,
        **retry_columns(new.retry),
    }


def _one_job_params(new: storage.NewJobs) -> dict[str, Any]:
    """The insert's parameters for ``new``'s one job (the only kind with a dedupe key)."""
    return {
        **_shared_params(new),
        "id": new.ids[0],
        "payload": new.payloads[0],
        "dedupe_key": new.dedupe_key,
    }
