"""The admin side of the contract: listing, history, stats, workers, bulk actions, purge."""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

import durq
from durq import InvalidState, JobState, Outcome

from .conftest import all_jobs, snapshot

ConnectQueue = Callable[..., durq.JobQueue]


def drain_one(q: durq.JobQueue, how: str, worker_id: str = "w") -> durq.Job:
    job = q.claim(worker_id)
    assert job is not None
    if how == "complete":
        return q.complete(job, "ok")
    if how == "fail":
        return q.fail(job, "boom", retry=False)
    raise AssertionError(how)


# -- list_jobs -----------------------------------------------------------------------------------


def test_list_jobs_pages_newest_first(queue: durq.JobQueue) -> None:
    ids = [j.id for j in queue.enqueue_many(range(25))]
    pages = []
    before = None
    while page := queue.list_jobs(limit=10, before=before):
        pages.append([j.id for j in page])
        before = page[-1].id
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in p] == ids[::-1]
    assert queue.list_jobs() == queue.list_jobs(limit=50)[:50]
    assert [j.id for j in queue.list_jobs(limit=3, before=ids[10])] == ids[9:6:-1]


def test_list_jobs_filters_by_state_and_queue(queue: durq.JobQueue) -> None:
    a1, a2, a3 = queue.enqueue_many(["a1", "a2", "a3"], queue="a")
    (b1,) = queue.enqueue_many(["b1"], queue="b")
    done = drain_one(queue, "complete")  # a1
    assert done.id == a1.id

    def ids(**filters: object) -> list[str]:
        return [j.id for j in queue.list_jobs(**filters)]  # type: ignore[arg-type]

    assert ids(queue="a") == [a3.id, a2.id, a1.id]
    assert ids(state="queued") == [b1.id, a3.id, a2.id]
    assert ids(state=JobState.SUCCEEDED) == [a1.id]
    assert ids(state="queued", queue="a") == [a3.id, a2.id]
    assert ids(state="queued", queue="a", limit=1) == [a3.id]
    assert ids(state="queued", queue="a", before=a3.id) == [a2.id]
    assert ids(state="running") == []
    assert ids(queue="nope") == []


# -- attempts ------------------------------------------------------------------------------------


def test_attempt_history_keeps_every_attempt(connect_queue: ConnectQueue) -> None:
    queue = connect_queue(retry=durq.RetryPolicy(base=0.05, cap=0.05))
    job = queue.enqueue("x")
    assert queue.attempts(job.id) == []
    one = queue.claim("w1", lease=60)
    assert one is not None
    queue.release(one)
    two = queue.claim("w2", lease=60)
    assert two is not None
    queue.fail(two, "Traceback: first try")
    time.sleep(0.1)  # the backoff
    three = queue.claim("w3", lease=60)
    assert three is not None and three.attempts == 2
    queue.complete(three, "fine")
    history = queue.attempts(job.id)
    assert [(a.worker_id, a.outcome, a.error) for a in history] == [
        ("w1", Outcome.RELEASED, None),
        ("w2", Outcome.FAILED, "Traceback: first try"),
        ("w3", Outcome.SUCCEEDED, None),
    ]
    assert all(a.job_id == job.id for a in history)
    assert history[0].attempt == 1 and history[-1].attempt == 2
    for a in history:
        assert a.finished_at is not None and a.started_at <= a.finished_at
    assert history[0].started_at <= history[1].started_at <= history[2].started_at
    assert history[-1].to_dict()["outcome"] == "succeeded"


# -- stats ---------------------------------------------------------------------------------------


def test_stats_shape(queue: durq.JobQueue) -> None:
    assert queue.stats()["queues"] == {}
    queue.enqueue_many(range(4))
    queue.enqueue("x", queue="idle", delay=3600)
    drain_one(queue, "complete")
    drain_one(queue, "fail")
    queue.claim("w")
    time.sleep(0.05)
    queue.pause("idle")
    stats = queue.stats()
    assert isinstance(stats["workers"], int)
    default, idle = stats["queues"]["default"], stats["queues"]["idle"]
    for entry in (default, idle):
        assert {s.value for s in JobState} | {"paused", "oldest_queued_age"} <= entry.keys()
    assert {s.value: default[s.value] for s in JobState} == {
        "queued": 1,
        "running": 1,
        "succeeded": 1,
        "unprocessable": 1,
        "cancelled": 0,
    }
    assert default["paused"] is False and idle["paused"] is True
    assert 0.05 <= default["oldest_queued_age"] < 60
    assert idle["queued"] == 1 and idle["oldest_queued_age"] is None  # delayed: not ready


# -- workers -------------------------------------------------------------------------------------


def test_workers_registry(queue: durq.JobQueue) -> None:
    assert queue.workers() == []
    queue.worker_heartbeat("w1", host="box-1", pid=4242, queues=["a", "b"])
    queue.worker_heartbeat("w2", host="box-2", pid=os.getpid(), queues=None)
    workers = {w.id: w for w in queue.workers()}
    assert workers.keys() == {"w1", "w2"}
    w1 = workers["w1"]
    assert (w1.host, w1.pid, tuple(w1.queues), w1.current_job_id) == (
        "box-1",
        4242,
        ("a", "b"),
        None,
    )
    assert w1.started_at <= w1.last_seen_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert queue.stats()["workers"] == 2

    job = queue.enqueue("x", queue="a")
    claimed = queue.claim("w1", queues=["a"])
    assert claimed is not None
    queue.worker_heartbeat("w1", host="box-1", pid=4242, queues=["a", "b"])
    again = {w.id: w for w in queue.workers()}
    assert again["w1"].current_job_id == job.id and again["w2"].current_job_id is None
    assert again["w1"].started_at == w1.started_at
    assert again["w1"].last_seen_at >= w1.last_seen_at
    queue.complete(claimed)
    assert {w.id: w.current_job_id for w in queue.workers()} == {"w1": None, "w2": None}

    # Restarted under the same id (another process): a new start, not the old one's.
    time.sleep(0.01)
    queue.worker_heartbeat("w1", host="box-1", pid=4343, queues=["a", "b"])
    restarted = {w.id: w for w in queue.workers()}["w1"]
    assert restarted.pid == 4343 and restarted.started_at > w1.started_at

    queue.worker_stopped("w1")
    assert [w.id for w in queue.workers()] == ["w2"]
    assert queue.stats()["workers"] == 1


def test_a_worker_gone_quiet_drops_out(connect_queue: ConnectQueue) -> None:
    q = connect_queue(worker_stale_after=1.0)
    q.worker_heartbeat("quiet", host="h", pid=1, queues=None)
    q.worker_heartbeat("alive", host="h", pid=2, queues=None)
    time.sleep(0.6)
    q.worker_heartbeat("alive", host="h", pid=2, queues=None)
    time.sleep(0.6)
    assert [w.id for w in q.workers()] == ["alive"]
    assert q.stats()["workers"] == 1
    q.worker_heartbeat("quiet", host="h", pid=1, queues=None)  # back again
    assert [w.id for w in q.workers()] == ["alive", "quiet"]


# -- bulk actions --------------------------------------------------------------------------------


def test_resubmit_all_and_cancel_all(queue: durq.JobQueue) -> None:
    queue.enqueue_many(range(3), max_attempts=1)
    queue.enqueue_many(range(2), queue="other", max_attempts=1)
    for _ in range(5):
        drain_one(queue, "fail")
    keep = queue.enqueue("stays queued", queue="third")

    assert queue.resubmit_all("unprocessable", queue="other") == 2
    assert len(queue.list_jobs(state="unprocessable")) == 3
    assert {j.attempts for j in queue.list_jobs(state="queued", queue="other")} == {0}

    assert queue.cancel_all(JobState.QUEUED, queue="other") == 2
    assert queue.cancel_all("unprocessable") == 3
    assert queue.resubmit_all("cancelled", queue="default") == 3
    assert len(queue.list_jobs(state="queued", queue="default")) == 3
    assert queue.get(keep.id).state is JobState.QUEUED
    assert queue.resubmit_all("succeeded") == 0


def test_bulk_actions_span_batches(queue: durq.JobQueue) -> None:
    queue.enqueue_many(range(1201))
    assert queue.cancel_all("queued") == 1201
    assert queue.resubmit_all("cancelled") == 1201
    assert queue.stats()["queues"]["default"]["queued"] == 1201
    # With a queue filter, across batches, leaving the other queue's jobs alone.
    queue.enqueue_many(range(1100), queue="other", priority=5)
    assert queue.cancel_all("queued", queue="other") == 1100
    counts = queue.stats()["queues"]
    assert counts["other"]["cancelled"] == 1100 and counts["default"]["queued"] == 1201


def test_resubmit_all_leaves_jobs_a_live_dedupe_key_blocks(queue: durq.JobQueue) -> None:
    old = queue.cancel(queue.enqueue("old", dedupe_key="k").id)
    live = queue.enqueue("live", dedupe_key="k")
    plain = queue.cancel(queue.enqueue("plain").id)
    assert queue.resubmit_all("cancelled") == 1
    assert queue.get(old.id).state is JobState.CANCELLED
    assert queue.get(plain.id).state is JobState.QUEUED
    assert queue.get(live.id).state is JobState.QUEUED


@pytest.mark.parametrize(
    ("action", "state"),
    [
        ("resubmit_all", "queued"),
        ("resubmit_all", "running"),
        ("cancel_all", "succeeded"),
        ("cancel_all", "cancelled"),
    ],
)
def test_bulk_actions_refuse_states_they_cannot_act_on(
    queue: durq.JobQueue, action: str, state: str
) -> None:
    queue.enqueue("x")
    drain_one(queue, "complete")
    queue.enqueue("y")
    queue.claim("w")
    before = snapshot(queue)
    with pytest.raises(InvalidState):
        getattr(queue, action)(state)
    assert snapshot(queue) == before


# -- purge ---------------------------------------------------------------------------------------


def test_purge_deletes_only_finished_jobs_older_than_asked(queue: durq.JobQueue) -> None:
    queue.enqueue_many(range(4))
    old_done = drain_one(queue, "complete")
    old_failed = drain_one(queue, "fail")
    old_cancelled = queue.cancel(queue.enqueue("c").id)
    time.sleep(1.0)
    new_done = drain_one(queue, "complete")
    running = queue.claim("w")
    assert running is not None
    queued = queue.enqueue("q")

    def attempts_kept() -> int:
        return sum(counts[-1] for counts, _ in queue.attempt_durations([1.0]).values())

    assert attempts_kept() == 3  # old_done, old_failed, new_done; the running one is open
    assert queue.purge(older_than=timedelta(days=1)) == 0
    # Finished half a second either side of the cutoff.
    assert queue.purge(older_than=timedelta(seconds=0.5), states=["cancelled"]) == 1
    assert queue.purge(older_than=timedelta(seconds=0.5)) == 2
    assert attempts_kept() == 1  # the history of purged jobs goes with them
    left = {j.id for j in all_jobs(queue)}
    assert left == {new_done.id, running.id, queued.id}
    for gone in (old_done, old_failed, old_cancelled):
        with pytest.raises(durq.JobNotFound):
            queue.attempts(gone.id)
    assert queue.purge(older_than=timedelta(0), states=[JobState.SUCCEEDED]) == 1
    assert {j.id for j in all_jobs(queue)} == {running.id, queued.id}


def test_purge_works_through_more_than_one_batch(queue: durq.JobQueue) -> None:
    jobs = queue.enqueue_many(range(1234))
    for job in jobs[:3]:
        claimed = queue.claim("w")
        assert claimed is not None and claimed.id == job.id
        queue.complete(claimed)
    assert queue.cancel_all("queued") == 1231
    live = queue.enqueue_many(["running", "queued"])
    assert queue.claim("w") is not None
    assert queue.purge(older_than=timedelta(0)) == 1234
    assert {j.id for j in all_jobs(queue)} == {j.id for j in live}


# -- import_jobs ---------------------------------------------------------------------------------


def test_import_jobs_keeps_ids_and_attempts(queue: durq.JobQueue) -> None:
    exported = [queue.enqueue({"n": n}, queue="moving", priority=n) for n in range(3)]
    tried = dataclasses.replace(exported[1], attempts=2)
    # Make room: the exported jobs leave this database as they would leave another one.
    for job in exported:
        queue.delete(queue.cancel(job.id).id)
    assert queue.import_jobs([exported[0], tried, exported[2]]) == 3
    assert queue.get(exported[0].id).payload == {"n": 0}
    assert queue.get(tried.id).attempts == 2
    assert queue.get(tried.id).state is JobState.QUEUED
    assert queue.import_jobs(exported) == 0  # repeating an import adds nothing
    assert len(all_jobs(queue)) == 3
    order = [queue.claim("w") for _ in range(3)]
    assert [j.id for j in order if j] == [exported[2].id, tried.id, exported[0].id]
    assert order[1] is not None and order[1].attempts == 3


def test_import_jobs_takes_only_queued_jobs_all_or_nothing(queue: durq.JobQueue) -> None:
    queued = queue.enqueue("q")
    done = drain_one(queue, "complete")
    queue.delete(done.id)
    fresh = dataclasses.replace(queued, id=done.id)  # an id this database no longer has
    before = snapshot(queue)
    with pytest.raises(durq.InvalidJob):
        queue.import_jobs([fresh, done])
    assert snapshot(queue) == before


# -- metrics -------------------------------------------------------------------------------------


def test_throughput_shape(queue: durq.JobQueue) -> None:
    queue.enqueue_many(range(3))
    drain_one(queue, "complete")
    drain_one(queue, "complete")
    drain_one(queue, "fail")
    before = datetime.now(UTC)
    steps = queue.throughput(window=timedelta(minutes=10), step=timedelta(minutes=1))
    after = datetime.now(UTC)
    assert len(steps) == 10
    times = [t for t, _ in steps]
    assert times == sorted(times)
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(times))
    assert times[-1] <= after and before < times[-1] + timedelta(minutes=1)  # the current step
    for _, counts in steps:
        assert counts.keys() == {o.value for o in Outcome}
    totals = {o.value: sum(c[o.value] for _, c in steps) for o in Outcome}
    assert totals["succeeded"] == 2 and totals["unprocessable"] == 1 and totals["failed"] == 0
    for window, step in [
        (timedelta(minutes=1), timedelta(0)),
        (timedelta(minutes=1), timedelta(minutes=2)),
        (5, timedelta(minutes=1)),
        (timedelta(minutes=5), 60),
    ]:
        with pytest.raises(durq.InvalidJob):
            queue.throughput(window=window, step=step)  # type: ignore[arg-type]


def test_attempt_durations_shape(queue: durq.JobQueue) -> None:
    assert queue.attempt_durations([0.1, 1.0]) == {}
    for bad in ([float("nan")], ["1"], [True]):
        with pytest.raises(durq.InvalidJob):
            queue.attempt_durations(bad)
    queue.enqueue_many(range(3))
    slow = queue.claim("w")
    assert slow is not None
    time.sleep(0.3)
    queue.complete(slow)
    drain_one(queue, "complete")
    drain_one(queue, "fail")
    queue.enqueue("open")
    assert queue.claim("w") is not None  # a running attempt is not finished: not counted
    durations = queue.attempt_durations([0.2, 100.0, 50.0])
    assert durations.keys() == {"succeeded", "unprocessable"}
    counts, total = durations["succeeded"]
    # <= 0.2 s (not the slow one), <= 50 s, <= 100 s, all
    assert counts[0] <= 1 and counts[1:] == [2, 2, 2]
    assert 0.3 <= total < 100
    failed, failed_total = durations["unprocessable"]
    assert failed[1:] == [1, 1, 1] and failed[0] <= 1 and 0 <= failed_total < 50
    # Prometheus's last bucket is +Inf: it holds every finished attempt.
    infinite = queue.attempt_durations([float("inf")])
    assert infinite["succeeded"][0] == [2, 2] and infinite["unprocessable"][0] == [1, 1]


@pytest.mark.parametrize(
    "change",
    [
        {"id": None},
        {"id": ""},
        {"id": "not-a-uuid"},
        {"attempts": -1},
        {"attempts": 1.5},
        {"state": JobState.RUNNING},
        {"payload": float("nan")},
        {"queue": "bad name"},
        {"max_attempts": 0},
        {"state": "done"},
        {"run_at": "2026-01-01T00:00:00Z"},
        {"run_at": datetime(2026, 1, 1)},  # naive: which zone?
        {"created_at": None},
    ],
    ids=repr,
)
def test_import_jobs_refuses_a_bad_job(queue: durq.JobQueue, change: dict[str, object]) -> None:
    template = queue.cancel(queue.enqueue("x").id)
    queue.delete(template.id)
    good = dataclasses.replace(template, state=JobState.QUEUED)
    bad = dataclasses.replace(good, **change)
    before = snapshot(queue)
    with pytest.raises(durq.InvalidJob):
        queue.import_jobs([good, bad])
    assert snapshot(queue) == before


# -- the job's shape and waiting for work ----------------------------------------------------------


def test_job_fields_and_their_json_form(queue: durq.JobQueue) -> None:
    queue.enqueue({"n": 1}, dedupe_key="k")
    job = queue.claim("w")
    assert job is not None
    data = job.to_dict()
    assert list(data) == [
        "id",
        "queue",
        "payload",
        "state",
        "priority",
        "run_at",
        "attempts",
        "max_attempts",
        "timeout",
        "dedupe_key",
        "worker_id",
        "lease_expires_at",
        "lease_token",
        "last_error",
        "task",
        "result",
        "created_at",
        "updated_at",
    ]
    assert data["state"] == "running" and data["payload"] == {"n": 1}
    for key in ("run_at", "lease_expires_at", "created_at", "updated_at"):
        text = data[key]
        assert isinstance(text, str) and text.endswith("Z")
        assert datetime.fromisoformat(text.replace("Z", "+00:00")) == getattr(job, key)
    [attempt] = queue.attempts(job.id)
    assert set(attempt.to_dict()) == {
        "job_id",
        "attempt",
        "worker_id",
        "started_at",
        "finished_at",
        "outcome",
        "error",
    }


def test_wait_for_change_wakes_on_another_connections_commit(
    queue: durq.JobQueue, connect_queue: ConnectQueue
) -> None:
    queue.wait_for_change(0.05)  # nothing happens: it returns after the timeout
    producer = connect_queue()
    timer = threading.Timer(0.2, lambda: producer.enqueue("wake up"))
    timer.start()
    started = time.monotonic()
    try:
        queue.wait_for_change(30)
    finally:
        timer.join()
    assert time.monotonic() - started < 30, "it slept the whole timeout: the commit went unseen"
    assert queue.claim("w") is not None
