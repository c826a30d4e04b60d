"""``JobQueue``: the contract every backend implements. Its docstrings are the reference.

The public methods are written here, once: each checks and normalises its arguments, then
calls the backend's storage primitives (the abstract ``_`` methods at the end of the class),
and turns what they report into the contract's answers and errors. A backend only stores:
it never sees an unchecked argument and never words an error a caller reads. So a new
backend cannot forget a check, and every backend refuses the same things the same way.
See docs/design.md for the states, leases and fencing these methods keep.
"""

from __future__ import annotations

import abc
import dataclasses
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from durq import codec, validation
from durq.errors import DurqError, InvalidJob, InvalidState, JobNotFound, LeaseLost
from durq.ids import new_job_ids
from durq.job import (
    CANCELLABLE_STATES,
    FINISHED_STATES,
    JSON,
    Attempt,
    Finished,
    Job,
    JobState,
    Outcome,
    WorkerInfo,
)
from durq.retry import RetryPolicy
from durq.storage import Changed, ClaimRequest, KeyHeld, NewJobs, QueueCounts, Settlement

DEFAULT_LEASE = 30.0
# Told how many more jobs a bulk action has gone through, after each batch (a progress bar).
Progress = Callable[[int], None]
_CHECKED_KEPT = 64  # sets of enqueue options kept checked (see ``JobQueue.enqueue``)
MAX_CLAIM = 1000  # jobs one claim may take: a worker's slots, far below any backend's limits


@dataclasses.dataclass(frozen=True, slots=True)
class QueueSettings:
    """Tunables shared by every backend; ``durq.connect(url, **fields)`` sets them."""

    max_payload_bytes: int = codec.DEFAULT_MAX_PAYLOAD_BYTES  # for payloads and results alike
    # How deeply lists and objects may nest in a payload or result (both refused beyond it).
    max_payload_depth: int = codec.DEFAULT_MAX_PAYLOAD_DEPTH
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    # A worker that has not reported for this long is left out of ``workers()``.
    worker_stale_after: float = 60.0
    # Where idle workers listen for wake-ups, when not at the queue's own URL (PostgreSQL
    # behind a pooler in transaction mode: a session-mode or direct URL). Default:
    # $DURQ_LISTEN_URL, else the queue's URL.
    listen_url: str | None = None
    # False: refuse (``NoDatabase``) a database that does not exist yet, or has no durq
    # tables, instead of creating it; for commands that only read, where a mistyped URL
    # would otherwise show an empty queue.
    create: bool = True

    def __post_init__(self) -> None:
        validation.whole_number(self.max_payload_bytes, "max_payload_bytes", minimum=16)
        validation.payload_depth(self.max_payload_depth)
        if not isinstance(self.retry, RetryPolicy):
            raise InvalidJob(f"retry must be a durq.RetryPolicy, not {self.retry!r}")
        validation.seconds(self.worker_stale_after, "worker_stale_after", allow_zero=False)
        if not isinstance(self.create, bool):
            raise InvalidJob(f"create must be True or False, not {self.create!r}")
        if self.listen_url is not None and not isinstance(self.listen_url, str):
            raise InvalidJob(f"listen_url must be a database URL, not {self.listen_url!r}")


class JobQueue(abc.ABC):
    """A durable job queue.

    Every method is atomic: it happens whole or not at all, and one that raises has changed
    nothing. Worker calls on a running job (``heartbeat``, ``complete``, ``fail``,
    ``release``) are fenced by the ``lease_token`` the claim handed out: a stale token raises
    ``LeaseLost`` and changes nothing. Errors are ``durq.DurqError`` subclasses only; a driver
    error is wrapped in ``BackendError`` with the original on ``__cause__``.

    A lease that has expired stays valid until a ``claim`` rescues the job: until then its
    holder may still heartbeat, complete, fail or release (no one else can hold the job).

    A queue object is safe to share between the threads of a process; each process (a forked
    child too) gets its own connection.
    """

    settings: QueueSettings
    url: str  # where it is, as given to durq.connect (for the application's own connections)

    def __init__(self, url: str, settings: QueueSettings) -> None:
        self.url = url
        self.settings = settings
        # The checked options of recent enqueue calls that stored a job, by the call's option
        # arguments: a producer passes the same few sets again and again (see ``enqueue``).
        self._checked: dict[tuple[object, ...], NewJobs] = {}

    # -- producers ---------------------------------------------------------------------------

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
        task: str | None = None,
        retry: RetryPolicy | None = None,
        connection: Any = None,
    ) -> Job:
        """Store one job and return it, ``queued``; durable when this returns.

        ``delay`` seconds pass before it can be claimed. With a ``dedupe_key``, while a job
        of the same queue and key is ``queued`` or ``running`` that job is returned instead
        and nothing is added. ``task`` names the task that runs it (``durq.App`` sets it);
        ``retry`` is its own backoff (default: ``settings.retry``). Raises ``InvalidJob`` for
        a payload that is not JSON (NaN and Infinity included), is larger than
        ``settings.max_payload_bytes`` encoded or nests deeper than
        ``settings.max_payload_depth``, a bad queue name, or a bad option.

        ``connection``: the application's own database connection (psycopg, or ``sqlite3``
        on the queue's file): the job is written in the transaction it has open, and exists
        exactly when that transaction commits; nothing is committed here.
        """
        key: tuple[object, ...] | None = None
        if dedupe_key is None and connection is None:
            # The options of an earlier call that was checked and stored a job are not checked
            # again: a lone enqueue costs about a third less CPU without the checks and their
            # calls, and more after each commit's sync has left the caches cold. The types are
            # in the key because equal keys are not all valid: 1, 1.0 and True, or a str and a
            # UserString of the same text.
            key = (
                queue,
                type(queue),
                priority,
                type(priority),
                delay,
                type(delay),
                max_attempts,
                type(max_attempts),
                timeout,
                type(timeout),
                task,
                type(task),
                retry,
            )
            try:
                checked = self._checked.get(key)
            except TypeError:  # an unhashable option: the checks below say what is wrong
                checked = key = None
            if checked is not None:
                return self._insert_one(checked, self._encode(payload, "payload"))
        new = self._new_jobs(
            [payload], queue, priority, delay, max_attempts, timeout, task, retry, dedupe_key
        )
        if connection is not None:
            return self._insert_external(connection, new)[0]
        job = self._insert(new)[0]
        if key is not None:
            if len(self._checked) >= _CHECKED_KEPT:  # many delays, say: keep the newest only
                self._checked.clear()
            self._checked[key] = dataclasses.replace(new, ids=(), payloads=())
        return job

    def enqueue_many(
        self,
        payloads: Iterable[JSON],
        *,
        queue: str = "default",
        priority: int = 0,
        delay: float = 0.0,
        max_attempts: int = 5,
        timeout: float = 300.0,
        task: str | None = None,
        retry: RetryPolicy | None = None,
        connection: Any = None,
    ) -> list[Job]:
        """Store one job per payload in one transaction: all of them, or (on error) none.
        ``connection``: as ``enqueue``'s."""
        new = self._new_jobs(payloads, queue, priority, delay, max_attempts, timeout, task, retry)
        if not new.ids:
            return []
        if connection is not None:
            return self._insert_external(connection, new)
        return self._insert(new)

    async def enqueue_async(
        self,
        payload: JSON,
        *,
        connection: Any,
        queue: str = "default",
        priority: int = 0,
        delay: float = 0.0,
        max_attempts: int = 5,
        timeout: float = 300.0,
        dedupe_key: str | None = None,
        task: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Job:
        """``enqueue`` in the open transaction of the application's async connection (a
        psycopg ``AsyncConnection``)."""
        new = self._new_jobs(
            [payload], queue, priority, delay, max_attempts, timeout, task, retry, dedupe_key
        )
        return (await self._insert_external_async(connection, new))[0]

    def complete_in(self, connection: Any, job: Job, result: JSON = None) -> Job:
        """Complete ``job`` in the application's open transaction on ``connection``: the
        job is ``succeeded`` exactly when that transaction commits, together with whatever
        else it wrote (the task's effect). Fenced: a stale lease raises ``LeaseLost`` before
        anything is written, and the application should roll back."""
        settlement = self._success(job, result)
        return _fenced(job, self._complete_external(connection, settlement))

    async def complete_in_async(self, connection: Any, job: Job, result: JSON = None) -> Job:
        """``complete_in`` on an async connection (a psycopg ``AsyncConnection``)."""
        settlement = self._success(job, result)
        return _fenced(job, await self._complete_external_async(connection, settlement))

    def enqueue_periodic(
        self,
        name: str,
        slot: datetime,
        payload: JSON,
        *,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int = 5,
        timeout: float = 300.0,
        task: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Job | None:
        """Store the job of the periodic schedule ``name`` for its time ``slot``, once.

        Returns the job, ready at ``slot``; or ``None``, storing nothing, when a job was
        stored already for this slot of ``name`` or a later one (by any process). So workers
        on many machines can all schedule every slot, and each slot runs once. The job's
        dedupe key is ``name@slot``.
        """
        validation.label(name, "name")
        when = validation.moment(slot, "slot")
        delay = max(0.0, when.timestamp() - time.time())
        new = self._new_jobs([payload], queue, priority, delay, max_attempts, timeout, task, retry)
        key = f"{name}@{when.astimezone(UTC).isoformat().replace('+00:00', 'Z')}"
        return self._insert_periodic(dataclasses.replace(new, dedupe_key=key[:255]), name, when)

    def _new_jobs(
        self,
        payloads: Iterable[JSON],
        queue: object,
        priority: object,
        delay: object,
        max_attempts: object,
        timeout: object,
        task: object,
        retry: object,
        dedupe_key: object = None,
    ) -> NewJobs:
        """The checked, encoded jobs of one enqueue call (every check before any write)."""
        validation.job_options(queue, priority, delay, max_attempts, timeout)
        if task is not None:
            validation.label(task, "task")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidJob(f"retry must be a durq.RetryPolicy, not {retry!r}")
        texts = [self._encode(p, "payload") for p in payloads]
        return NewJobs(
            ids=new_job_ids(len(texts)) if texts else [],
            payloads=texts,
            queue=queue,  # type: ignore[arg-type]  # checked above, as the others
            priority=priority,  # type: ignore[arg-type]
            delay=float(delay),  # type: ignore[arg-type]
            max_attempts=max_attempts,  # type: ignore[arg-type]
            timeout=float(timeout),  # type: ignore[arg-type]
            task=task,  # type: ignore[arg-type]
            retry=retry,
            dedupe_key=validation.dedupe_key(dedupe_key),
        )

    def import_jobs(self, jobs: Iterable[Job], *, progress: Progress | None = None) -> int:
        """Store jobs exported from another durq queue, keeping their ids, in one transaction.

        For moving queues between backends (``durq export`` / ``durq import``). Only
        ``queued`` jobs are taken (``InvalidJob`` otherwise); their attempts so far are kept.
        A job whose id is already stored, or whose dedupe key a live job holds, is skipped, so
        an import can safely be repeated. ``last_error`` and the attempt history stay behind.
        Returns how many were added.

        ``progress``, if given, is called as the jobs are written, with how many more were
        gone through (added or skipped); nothing is committed until the last of them.
        """
        checked = []
        for job in jobs:
            validation.importable(job)
            if not job.id.islower():  # stored in the canonical lowercase form ids are made in
                job = dataclasses.replace(job, id=job.id.lower())
            checked.append((job, self._encode(job.payload, "payload")))
        return self._import(checked, progress or _unwatched) if checked else 0

    # -- workers -----------------------------------------------------------------------------

    def claim(
        self, worker_id: str, queues: Sequence[str] | None = None, lease: float = DEFAULT_LEASE
    ) -> Job | None:
        """Take the next ready job for ``worker_id`` and return it ``running``, or ``None``.

        Considers ``queued`` jobs whose ``run_at`` has come, of ``queues`` (``None``: every
        queue) that are not paused; highest ``priority`` first, then earliest ``run_at``, then
        oldest. Atomic: no two callers get the same job. The claim starts an attempt (counted
        in ``attempts``), hands out a fresh ``lease_token`` and a lease of ``lease`` seconds.

        First it rescues running jobs of every queue whose lease has expired (their worker was
        lost), keeping their ``run_at``: the lost attempt counts, and a job with no attempts
        left becomes ``unprocessable`` with an error saying the worker was lost; the others are
        ``queued`` again.
        """
        found = self._claim(_claim_request(worker_id, queues, lease, 1))
        return found[0] if found else None

    def claim_many(
        self,
        worker_id: str,
        queues: Sequence[str] | None = None,
        lease: float = DEFAULT_LEASE,
        *,
        limit: int,
        claim_id: str | None = None,
    ) -> list[Job]:
        """Up to ``limit`` (1 to 1000) jobs, as ``claim`` would take them one after another,
        in one transaction; in claim order. Each has its own attempt and ``lease_token``.

        ``claim_id`` (16 hex digits, default: a random one) starts every lease token this
        claim hands out: should the call fail after the database committed it (a lost
        answer), ``recover_claims`` finds the jobs it took.
        """
        return self._claim(_claim_request(worker_id, queues, lease, limit, claim_id))

    def recover_claims(self, worker_id: str, claim_ids: Iterable[str]) -> list[Job]:
        """The jobs still running for ``worker_id`` under claims made with these claim ids,
        with their leases: what a claim whose answer never arrived took. Running them (or
        releasing them) saves their attempts from being lost when their leases expire."""
        validation.label(worker_id, "worker_id")
        wanted = [validation.claim_id(c) for c in claim_ids]
        return self._claimed_by(worker_id, wanted) if wanted else []

    def heartbeat(self, job: Job, lease: float = DEFAULT_LEASE) -> Job:
        """Renew ``job``'s lease to ``lease`` seconds from now. Fenced (``LeaseLost``)."""
        validation.claimed(job)
        (renewed,) = self._heartbeat([job], _lease(lease))
        return _fenced(job, renewed)

    def heartbeat_many(
        self, jobs: Sequence[Job], lease: float = DEFAULT_LEASE
    ) -> list[Job | DurqError]:
        """``heartbeat`` for each job, in one transaction (one statement where the backend
        can): per job, in order, the renewed ``Job``, or the ``LeaseLost`` (or
        ``JobNotFound``) it would have raised. Fencing is per job: one stale token refuses
        that job only."""
        checked = [validation.claimed(job) for job in jobs]
        if not checked:
            return []
        renewed = self._heartbeat(checked, _lease(lease))
        return [_answer(job, changed) for job, changed in zip(checked, renewed, strict=True)]

    def complete(self, job: Job, result: JSON = None) -> Job:
        """Finish the attempt: the job becomes ``succeeded`` with ``result``. Fenced.

        ``InvalidJob`` if ``result`` is not JSON or too large (the job stays running).
        """
        return self._settle_one(self._success(job, result), None)[0]

    def fail(self, job: Job, error: str, retry: bool = True) -> Job:
        """Record a failed attempt with ``error`` (a traceback). Fenced.

        With ``retry`` and attempts left the job is ``queued`` again after the backoff of
        ``settings.retry``; otherwise it becomes ``unprocessable``.
        """
        return self._settle_one(self._failure(job, error, retry), None)[0]

    def release(self, job: Job) -> Job:
        """Hand the job back unfinished: ``queued``, ready now, the attempt not counted. Fenced."""
        validation.claimed(job)
        return self._settle_one(Settlement(job, Outcome.RELEASED), None)[0]

    def complete_and_claim(
        self,
        job: Job,
        result: JSON = None,
        *,
        worker_id: str,
        queues: Sequence[str] | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> tuple[Job, Job | None]:
        """``complete(job, result)`` then ``claim(...)`` in one transaction (one durable
        commit per job drained): the finished job and the next one.

        Arguments are checked before anything is written. A stale lease raises ``LeaseLost``
        and claims nothing. If the backend itself fails (``BackendError``: disk full,
        connection lost) nothing is done: the job is still running under the caller's lease,
        and when that lease runs out it is claimed and run again, as after a crash.
        """
        settlement = self._success(job, result)
        return self._settle_one(settlement, _claim_request(worker_id, queues, lease, 1))

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
        """``fail(job, error, retry)`` then ``claim(...)``, as ``complete_and_claim``."""
        settlement = self._failure(job, error, retry)
        return self._settle_one(settlement, _claim_request(worker_id, queues, lease, 1))

    def settle(
        self,
        finished: Sequence[Finished],
        *,
        worker_id: str | None = None,
        queues: Sequence[str] | None = None,
        lease: float = DEFAULT_LEASE,
        claim: int = 0,
        claim_id: str | None = None,
    ) -> tuple[list[Job | DurqError], list[Job]]:
        """Write how several attempts ended, then claim up to ``claim`` jobs for
        ``worker_id``, all in one transaction (one durable commit for a batch).

        Fencing is per job: returns, per ``Finished`` in order, the job as it is now, or the
        ``LeaseLost`` (or ``JobNotFound``) that its own call would have raised, with nothing
        written for it; and the jobs claimed, in claim order. If any outcome was refused
        nothing is claimed (the worker has lost a lease and should look at its jobs first).
        Every argument is checked before anything is written (``InvalidJob``, naming the
        job, for a result that cannot be stored).
        """
        settlements = [self._settlement(f) for f in finished]
        request = None
        if claim:
            if worker_id is None:
                raise InvalidJob("settle needs a worker_id to claim for")
            request = _claim_request(worker_id, queues, lease, claim, claim_id)
        if not settlements:
            return [], self._claim(request) if request else []
        changed, claimed = self._settle(settlements, request)
        answers = [_answer(s.job, c) for s, c in zip(settlements, changed, strict=True)]
        return answers, claimed

    def worker_heartbeat(
        self, worker_id: str, *, host: str, pid: int, queues: Sequence[str] | None
    ) -> None:
        """Register the worker, or note that it is still alive (see ``workers``)."""
        validation.worker(worker_id, host, pid, queues)
        self._register_worker(worker_id, host, pid, validation.queue_names(queues))

    def worker_stopped(self, worker_id: str) -> None:
        """Remove the worker from the registry (it stopped cleanly)."""
        self._unregister_worker(validation.label(worker_id, "worker_id"))

    def wait_for_change(self, timeout: float, *, finished: bool = False) -> None:
        """Block until another connection may have changed the queue, or ``timeout`` passes.

        Idle workers call this between empty claims: it returns soon after a job may have
        become ready. With ``finished``, soon after a job may have finished instead (what
        ``durq.App.wait`` waits for). A backend that can notice commits cheaply (SQLite's
        data version, PostgreSQL's NOTIFY) returns soon after one; this default only sleeps.
        """
        time.sleep(timeout)

    # -- admin -------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """The job with this id; ``JobNotFound`` if there is none."""
        job = self._get(str(job_id))
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        return job

    def resolve_id(self, id_or_prefix: str) -> str:
        """The full id of the one job whose id starts with ``id_or_prefix`` (at least
        ``validation.MIN_ID_PREFIX`` characters of it, any case), as git takes a short commit hash.
        ``JobNotFound`` when no job's id starts so; ``InvalidJob`` when several do (naming
        them) or when it cannot be the start of an id."""
        prefix = validation.id_prefix(id_or_prefix)
        found = self._ids_starting(prefix, 3)
        if not found:
            whole = len(prefix) == 36
            raise JobNotFound(f"no job {prefix}" if whole else f"no job's id starts {prefix}")
        if len(found) > 1:
            listed = ", ".join(found[:2]) + (", …" if len(found) > 2 else "")
            raise InvalidJob(
                f"{prefix} is the start of more than one job's id ({listed}): give more of it"
            )
        return found[0]

    def short_ids(self, job_ids: Iterable[str], minimum: int = 8) -> dict[str, str]:
        """For each id, its shortest start (at least ``minimum`` characters) that no other
        job's id shares: what ``resolve_id`` takes back, as git shows short hashes. Ids of
        jobs made in the same minute share their first 8 characters (UUIDv7 starts with
        the time), so some come out longer."""
        ids = [validation.id_prefix(i) for i in job_ids]
        neighbours = self._id_neighbours(ids) if ids else {}
        short = {}
        for job_id in ids:
            shared = max(
                (_common_start(job_id, n) for n in neighbours.get(job_id, ()) if n), default=0
            )
            short[job_id] = job_id[: max(minimum, shared + 1)]
        return short

    def list_jobs(
        self,
        state: JobState | str | None = None,
        queue: str | None = None,
        limit: int = 50,
        before: str | None = None,
        *,
        task: str | None = None,
    ) -> list[Job]:
        """Up to ``limit`` jobs, newest first, optionally of one state, one queue and one
        task.

        Keyset paging: pass the last id of a page as ``before`` to get the next page. Its cost
        does not grow with the page number. ``InvalidJob`` for an unknown state, bad queue
        name or a ``limit`` outside 1..1000.
        """
        chosen = None if state is None else validation.state(state)
        name = None if queue is None else validation.queue_name(queue)
        made_by = None if task is None else validation.label(task, "task")
        validation.page_limit(limit)
        after = None if before is None else str(before)
        return self._list_jobs(chosen, name, limit, after, made_by)

    def attempts(self, job_id: str) -> list[Attempt]:
        """The job's attempt history, oldest first; ``JobNotFound`` if there is no such job."""
        history = self._attempts(str(job_id))
        if history is None:
            raise JobNotFound(f"no job {job_id}")
        return history

    def stats(self) -> dict[str, Any]:
        """Counts per queue: ``{"queues": {name: {state: n, ..., "paused": bool,
        "oldest_queued_age": seconds or None}}, "workers": n}``. Every state has a key.
        ``oldest_queued_age`` is how long the oldest ready ``queued`` job has waited."""
        read = self._counts()
        queues: dict[str, dict[str, Any]] = {}

        def entry(name: str) -> dict[str, Any]:
            if name not in queues:
                first = read.oldest_ready.get(name)
                queues[name] = {
                    **{s.value: 0 for s in JobState},
                    "paused": read.paused.get(name, False),
                    "oldest_queued_age": None if first is None else max(0.0, read.now - first),
                }
            return queues[name]

        for name in read.paused:
            entry(name)
        for name, state, n in read.counts:
            entry(name)[state] = n
        return {"queues": dict(sorted(queues.items())), "workers": read.workers}

    def resubmit(self, job_id: str) -> Job:
        """Queue a finished (``succeeded``, ``unprocessable``, ``cancelled``) job again, ready
        now, with its attempts reset to 0. ``InvalidState`` otherwise, or when a live job holds
        the same dedupe key."""
        try:
            changed = self._resubmit(str(job_id))
        except KeyHeld:
            raise InvalidState(
                f"job {job_id}: a queued or running job already holds its dedupe key"
            ) from None
        return _done(job_id, changed, "resubmit")

    def cancel(self, job_id: str) -> Job:
        """Cancel a ``queued``, ``running`` or ``unprocessable`` job; ``InvalidState``
        otherwise. A running job's lease ends with it: its attempt is recorded as
        ``cancelled``, whatever its worker reports afterwards is refused (``LeaseLost``),
        and the worker stops the task when it next renews its leases."""
        return _done(job_id, self._cancel(str(job_id)), "cancel")

    def resubmit_all(
        self, state: JobState | str, queue: str | None = None, *, progress: Progress | None = None
    ) -> int:
        """``resubmit`` every job in ``state`` (a finished state), optionally of one queue.

        Works in bounded batches, each its own transaction; returns how many were resubmitted.
        Jobs that a live job's dedupe key blocks are left as they are. ``progress``, if given,
        is called after each batch commits with how many it resubmitted.
        """
        chosen = _bulk_state(state, queue, FINISHED_STATES)
        where = None if queue is None else str(queue)
        return self._resubmit_all(chosen, where, progress or _unwatched)

    def cancel_all(
        self, state: JobState | str, queue: str | None = None, *, progress: Progress | None = None
    ) -> int:
        """``cancel`` every job in ``state`` (``queued``, ``running`` or ``unprocessable``),
        in batches; ``progress`` as ``resubmit_all``'s."""
        chosen = _bulk_state(state, queue, CANCELLABLE_STATES)
        where = None if queue is None else str(queue)
        return self._cancel_all(chosen, where, progress or _unwatched)

    def delete(self, job_id: str) -> None:
        """Delete a finished job and its history; ``InvalidState`` for a queued or running one."""
        _done(job_id, self._delete(str(job_id)), "delete")

    def purge(
        self,
        older_than: timedelta,
        states: Iterable[JobState | str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> int:
        """Delete finished jobs last updated more than ``older_than`` ago, in bounded batches
        (each its own short transaction, so workers are never blocked for long); ``states``
        narrows which finished states (default: all three). Returns how many were deleted.
        ``progress``, if given, is called after each batch commits with how many it deleted."""
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise InvalidJob(f"older_than must be a timedelta of zero or more, not {older_than!r}")
        chosen = sorted(FINISHED_STATES)
        if states is not None:
            chosen = [validation.state(s) for s in states]
        for state in chosen:
            if state not in FINISHED_STATES:
                raise InvalidState(f"purge deletes only finished jobs, not {state} ones")
        unique = list(dict.fromkeys(chosen))
        return self._purge(older_than.total_seconds(), unique, progress or _unwatched)

    def pause(self, queue: str) -> None:
        """Stop claims from ``queue``; its jobs stay as they are. Enqueue still works."""
        self._set_paused(validation.queue_name(queue), True)

    def resume(self, queue: str) -> None:
        """Let workers claim from ``queue`` again."""
        self._set_paused(validation.queue_name(queue), False)

    def workers(self) -> list[WorkerInfo]:
        """Workers seen within ``settings.worker_stale_after`` seconds, each with the job it
        is running, if any."""
        return self._workers(self.settings.worker_stale_after)

    @abc.abstractmethod
    def close(self) -> None:
        """Close this process's connection. The object must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- shared steps of the public methods --------------------------------------------------

    def _encode(self, value: JSON, what: str) -> str:
        return codec.encode(
            value, what, self.settings.max_payload_bytes, self.settings.max_payload_depth
        )

    def _success(self, job: Job, result: JSON) -> Settlement:
        validation.claimed(job)
        return Settlement(job, Outcome.SUCCEEDED, result=self._encode(result, "result"))

    def _failure(self, job: Job, error: str, retry: bool) -> Settlement:
        validation.claimed(job)
        text = validation.error_text(error)
        if not retry:
            return Settlement(job, Outcome.UNPROCESSABLE, error=text)
        backoff = (job.retry or self.settings.retry).delay(job.attempts)
        return Settlement(job, Outcome.FAILED, error=text, backoff=backoff)

    def _settlement(self, finished: Finished) -> Settlement:
        if not isinstance(finished, Finished):
            raise InvalidJob(f"expected a durq.Finished, not {finished!r}")
        job, outcome = finished.job, finished.outcome
        if outcome is Outcome.SUCCEEDED:
            try:
                return self._success(job, finished.result)
            except InvalidJob as exc:
                raise InvalidJob(f"job {getattr(job, 'id', job)}: {exc}") from None
        if outcome is Outcome.FAILED or outcome is Outcome.UNPROCESSABLE:
            return self._failure(job, str(finished.error), outcome is Outcome.FAILED)
        if outcome is Outcome.RELEASED:
            return Settlement(validation.claimed(job), Outcome.RELEASED)
        raise InvalidJob(f"an attempt cannot be settled as {outcome!r}")

    def _settle_one(
        self, settlement: Settlement, claim: ClaimRequest | None
    ) -> tuple[Job, Job | None]:
        (changed,), claimed = self._settle([settlement], claim)
        return _fenced(settlement.job, changed), claimed[0] if claimed else None

    # -- storage primitives: what a backend implements ---------------------------------------
    #
    # Arguments arrive checked and normalised; each primitive is one transaction unless it
    # says otherwise. Errors other than those named here are the driver's, wrapped in
    # ``BackendError`` with the original on ``__cause__``.

    @abc.abstractmethod
    def _insert(self, new: NewJobs) -> list[Job]:
        """Store ``new``'s jobs, queued, in one transaction, registering their queue; the
        jobs in the order given. With a ``dedupe_key``: if a queued or running job of the
        queue holds it, store nothing and return that job instead."""

    def _insert_one(self, checked: NewJobs, payload: str) -> Job:
        """Store one job with ``checked``'s options (an earlier call's, no dedupe key) and the
        encoded ``payload``, as ``_insert`` would. A backend may store it with less work."""
        one = dataclasses.replace(checked, ids=new_job_ids(1), payloads=[payload])
        return self._insert(one)[0]

    # The application's own connection: optional, a backend without it refuses the call.

    def _insert_external(self, connection: Any, new: NewJobs) -> list[Job]:
        """As ``_insert``, in the transaction open on the application's ``connection``,
        committing nothing. ``InvalidJob`` for a connection this backend cannot use."""
        raise InvalidJob(f"{type(self).__name__} cannot enqueue on an application's connection")

    async def _insert_external_async(self, connection: Any, new: NewJobs) -> list[Job]:
        """``_insert_external`` on an async connection."""
        raise InvalidJob(f"{type(self).__name__} cannot enqueue on an async connection")

    def _complete_external(self, connection: Any, settlement: Settlement) -> Changed:
        """Write a success as ``_settle`` would, in the transaction open on ``connection``."""
        raise InvalidJob(f"{type(self).__name__} cannot complete on an application's connection")

    async def _complete_external_async(self, connection: Any, settlement: Settlement) -> Changed:
        """``_complete_external`` on an async connection."""
        raise InvalidJob(f"{type(self).__name__} cannot complete on an async connection")

    @abc.abstractmethod
    def _insert_periodic(self, new: NewJobs, name: str, slot: datetime) -> Job | None:
        """In one transaction: unless ``name``'s latest recorded slot is ``slot`` or later,
        record ``slot`` as its latest and store ``new``'s one job (as ``_insert``); else
        store nothing and return ``None``."""

    @abc.abstractmethod
    def _import(self, jobs: Sequence[tuple[Job, str]], progress: Progress) -> int:
        """Store (job, encoded payload) pairs as queued jobs with their ids, attempts, times
        and options, in one transaction, registering their queues; skip any whose id is
        stored or whose dedupe key a live job holds. How many were added. Tell ``progress``
        how many pairs were gone through as the writing goes on."""

    @abc.abstractmethod
    def _claim(self, request: ClaimRequest) -> list[Job]:
        """Rescue expired leases, then claim up to ``request.limit`` jobs in claim order, as
        ``claim`` says, in one transaction; each with its own attempt and token."""

    @abc.abstractmethod
    def _claimed_by(self, worker_id: str, claim_ids: Sequence[str]) -> list[Job]:
        """The running jobs of ``worker_id`` whose lease token starts with one of
        ``claim_ids`` and a dot."""

    @abc.abstractmethod
    def _heartbeat(self, jobs: Sequence[Job], lease: float) -> list[Changed]:
        """Renew the lease of each running job whose ``lease_token`` is still current to
        ``lease`` seconds from now, in one transaction; per job, ``Changed``."""

    @abc.abstractmethod
    def _settle(
        self, settlements: Sequence[Settlement], claim: ClaimRequest | None
    ) -> tuple[list[Changed], list[Job]]:
        """Write each settlement (fenced: only while the job is running under the
        settlement's ``lease_token``, else refused) and end its attempt, then, if every
        settlement was written, claim as ``_claim`` does; all in one transaction.

        Returns ``Changed`` per settlement, in order, and the claimed jobs. A refused
        settlement means the worker lost that lease: it claims nothing until it has seen why.
        """

    @abc.abstractmethod
    def _register_worker(
        self, worker_id: str, host: str, pid: int, queues: tuple[str, ...] | None
    ) -> None:
        """Insert or refresh the worker's registry row (last seen now); forget workers unseen
        for ten times ``settings.worker_stale_after``."""

    @abc.abstractmethod
    def _unregister_worker(self, worker_id: str) -> None:
        """Delete the worker's registry row, if any."""

    @abc.abstractmethod
    def _get(self, job_id: str) -> Job | None:
        """The job, or ``None``."""

    @abc.abstractmethod
    def _id_neighbours(self, job_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """For each id, the ids just before and just after it in id order (``None`` at
        either end), whether or not a job has that id."""

    @abc.abstractmethod
    def _ids_starting(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` ids that start with ``prefix`` (lowercase hex digits and dashes),
        in order."""

    @abc.abstractmethod
    def _list_jobs(
        self,
        state: JobState | None,
        queue: str | None,
        limit: int,
        before: str | None,
        task: str | None,
    ) -> list[Job]:
        """Up to ``limit`` jobs with ids below ``before``, newest first, of ``state``,
        ``queue`` and ``task`` where given."""

    @abc.abstractmethod
    def _attempts(self, job_id: str) -> list[Attempt] | None:
        """The job's attempt history, oldest first; ``None`` when there is no such job."""

    @abc.abstractmethod
    def _counts(self) -> QueueCounts:
        """The queue registry, job counts, ready ages and live workers, in one snapshot."""

    @abc.abstractmethod
    def _resubmit(self, job_id: str) -> Changed:
        """Queue the job again (attempts 0, ready now, result and error cleared) if it is
        finished. Raises ``KeyHeld`` when a live job holds its dedupe key."""

    @abc.abstractmethod
    def _cancel(self, job_id: str) -> Changed:
        """Mark the job cancelled if it is in one of ``CANCELLABLE_STATES``."""

    @abc.abstractmethod
    def _delete(self, job_id: str) -> Changed:
        """Delete the job and its attempt history if it is finished; returns it as it was."""

    # The bulk actions tell ``progress`` how many jobs each batch changed, once it committed.

    @abc.abstractmethod
    def _resubmit_all(self, state: JobState, queue: str | None, progress: Progress) -> int:
        """``_resubmit`` every job in the finished ``state`` (of ``queue``), in bounded
        batches each its own transaction, leaving those a live dedupe key blocks. How many."""

    @abc.abstractmethod
    def _cancel_all(self, state: JobState, queue: str | None, progress: Progress) -> int:
        """``_cancel`` every job in the cancellable ``state`` (of ``queue``), in bounded
        batches each its own transaction. How many."""

    @abc.abstractmethod
    def _purge(self, older_than: float, states: Sequence[JobState], progress: Progress) -> int:
        """Delete the jobs of the finished ``states`` not updated for ``older_than`` seconds,
        with their history, in bounded batches each its own transaction. How many."""

    @abc.abstractmethod
    def _set_paused(self, queue: str, paused: bool) -> None:
        """Register the queue if need be and set whether it is paused."""

    @abc.abstractmethod
    def _workers(self, stale_after: float) -> list[WorkerInfo]:
        """Workers seen in the last ``stale_after`` seconds, by id, each with a job it runs."""


class JobInsights(abc.ABC):
    """What only the dashboard's charts and ``/metrics`` ask of a queue: history over time.

    Optional: a backend that lacks it still serves everything else, and the dashboard then
    leaves the chart and the attempt metrics out.
    """

    def throughput(
        self, window: timedelta = timedelta(hours=1), step: timedelta = timedelta(minutes=1)
    ) -> list[tuple[datetime, dict[str, int]]]:
        """Attempts finished in the last ``window``, counted by outcome per ``step``.

        One entry per step, oldest first, empty steps included.
        """
        if not isinstance(window, timedelta) or not isinstance(step, timedelta):
            raise InvalidJob("throughput's window and step must be timedeltas")
        step_s = step.total_seconds()
        if step_s <= 0 or window.total_seconds() < step_s:
            raise InvalidJob("throughput needs a step > 0 and a window of at least one step")
        n = int(window.total_seconds() // step_s)
        start, rows = self._finished_by_step(step_s, n)
        steps = [
            (datetime.fromtimestamp(start + i * step_s, tz=UTC), {o.value: 0 for o in Outcome})
            for i in range(n)
        ]
        for index, outcome, count in rows:
            if 0 <= index < n and outcome in steps[index][1]:
                steps[index][1][outcome] = count
        return steps

    def attempt_durations(self, buckets: Sequence[float]) -> dict[str, tuple[list[int], float]]:
        """Finished attempts still in the history, by outcome: for each outcome the count of
        attempts that took at most ``buckets[i]`` seconds (cumulative, as Prometheus
        histograms count; the last entry counts them all) and the sum of their durations.

        For ``/metrics``. One scan of the history: purge makes the totals go down again, which
        Prometheus reads as a counter reset.
        """
        bounds = validation.duration_buckets(buckets)
        found: dict[str, tuple[list[int], float]] = {}
        for outcome, bucket, count, seconds in self._attempt_durations(bounds):
            within, total = found.setdefault(outcome, ([0] * (len(bounds) + 1), 0.0))
            for i in range(bucket, len(bounds) + 1):  # it took at most bounds[i] from here on
                within[i] += count
            found[outcome] = (within, total + seconds)
        return found

    def live_jobs_by_task(self) -> dict[tuple[str, str], int]:
        """How many jobs of each task are queued and running: ``{(task, state): n}``, zero
        counts left out. For ``/metrics``; reads the live jobs only."""
        return {(task, state): n for task, state, n in self._live_jobs_by_task()}

    @abc.abstractmethod
    def _live_jobs_by_task(self) -> list[tuple[str, str, int]]:
        """(task, state, count) of the queued and running jobs that have a task."""

    @abc.abstractmethod
    def _finished_by_step(self, step: float, n: int) -> tuple[float, list[tuple[int, str, int]]]:
        """The start (Unix s) of the last ``n`` whole steps of ``step`` seconds, the current
        one last, and (step index, outcome, count) of the attempts finished since then."""

    @abc.abstractmethod
    def _attempt_durations(self, bounds: Sequence[float]) -> list[tuple[str, int, int, float]]:
        """Finished attempts grouped by outcome and bucket: (outcome, bucket, count, sum of
        their durations in seconds), where an attempt's bucket is how many of ``bounds``
        (ascending; infinities allowed) are below its duration."""


# -- checks and answers shared by the public methods -----------------------------------------


def _unwatched(done: int) -> None:
    """The progress callback of a bulk action no one watches."""


def _lease(lease: object) -> float:
    return validation.seconds(lease, "lease", allow_zero=False)


def _claim_request(
    worker_id: object,
    queues: Iterable[str] | None,
    lease: object,
    limit: object,
    claim_id: object = None,
) -> ClaimRequest:
    checked = validation.claim_options(worker_id, queues, lease)
    count = validation.whole_number(limit, "limit", minimum=1)
    if count > MAX_CLAIM:
        raise InvalidJob(f"limit must be at most {MAX_CLAIM}, not {count}")
    made = secrets.token_hex(8) if claim_id is None else validation.claim_id(claim_id)
    return ClaimRequest(worker_id, checked, float(lease), count, made)  # type: ignore[arg-type]


def _bulk_state(state: JobState | str, queue: str | None, allowed: frozenset[JobState]) -> JobState:
    """A bulk action (resubmit or cancel every job of a filter) takes only ``allowed`` states."""
    chosen = validation.state(state)
    if chosen not in allowed:
        names = ", ".join(sorted(allowed))
        raise InvalidState(f"only jobs that are {names} can be chosen for this, not {chosen}")
    if queue is not None:
        validation.queue_name(queue)
    return chosen


def stale(job: Job, state: JobState | None) -> LeaseLost | JobNotFound:
    """The error for a fenced call refused on ``job``, now in ``state`` (``None``: gone)."""
    if state is None:
        return JobNotFound(f"no job {job.id}")
    held = ", held by another attempt" if state is JobState.RUNNING else ""
    lost = LeaseLost(f"job {job.id}: lease token is stale (the job is {state} now{held})")
    lost.state = state
    return lost


def _fenced(job: Job, changed: Changed) -> Job:
    if isinstance(changed, Job):
        return changed
    raise stale(job, changed)


def _answer(job: Job, changed: Changed) -> Job | DurqError:
    return changed if isinstance(changed, Job) else stale(job, changed)


def _done(job_id: str, changed: Changed, action: str) -> Job:
    """The changed job, or why ``action`` changed nothing: no such job, or not in that state."""
    if isinstance(changed, Job):
        return changed
    if changed is None:
        raise JobNotFound(f"no job {job_id}")
    raise InvalidState(f"cannot {action} job {job_id}: it is {changed}")


def _common_start(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
