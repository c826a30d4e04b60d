"""Every transition of the state machine in docs/design.md, and every refused one."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import durq
from durq import InvalidState, JobState, LeaseLost, Outcome, RetryPolicy

from .conftest import snapshot

ConnectQueue = Callable[..., durq.JobQueue]


def outcomes(q: durq.JobQueue, job_id: str) -> list[Outcome | None]:
    return [a.outcome for a in q.attempts(job_id)]


def running(q: durq.JobQueue, worker_id: str = "w1", **enqueue: object) -> durq.Job:
    """A fresh job, claimed."""
    job = q.enqueue({"job": "x"}, **enqueue)  # type: ignore[arg-type]
    claimed = q.claim(worker_id)
    assert claimed is not None and claimed.id == job.id
    return claimed


def finished(q: durq.JobQueue, state: JobState) -> durq.Job:
    """A fresh job brought to the finished ``state``."""
    if state is JobState.CANCELLED:
        return q.cancel(q.enqueue({"job": "x"}).id)
    job = running(q)
    if state is JobState.SUCCEEDED:
        return q.complete(job, "ok")
    return q.fail(job, "no", retry=False)


def refused(q: durq.JobQueue, action: Callable[[], object], error: type[Exception]) -> None:
    """``action`` raises ``error`` with a one-line message and changes nothing."""
    before = snapshot(q)
    with pytest.raises(error) as raised:
        action()
    assert "\n" not in str(raised.value)
    assert snapshot(q) == before


# -- enqueue -------------------------------------------------------------------------------------


def test_enqueue_stores_a_queued_job_with_the_defaults(queue: durq.JobQueue) -> None:
    before = datetime.now(UTC)
    payload = {"n": 1, "nested": [1, 2.5, None, True, "é€😀"], "empty": {}}
    job = queue.enqueue(payload)
    after = datetime.now(UTC)

    assert isinstance(job, durq.Job)
    assert job.state is JobState.QUEUED
    assert (job.queue, job.payload, job.priority) == ("default", payload, 0)
    assert (job.attempts, job.max_attempts, job.timeout) == (0, 5, 300.0)
    assert job.dedupe_key is job.worker_id is job.lease_token is job.lease_expires_at is None
    assert job.last_error is None and job.result is None
    for moment in (job.created_at, job.updated_at, job.run_at):
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= moment <= after + timedelta(seconds=1)
    assert queue.get(job.id) == job


def test_enqueue_keeps_every_option(queue: durq.JobQueue) -> None:
    job = queue.enqueue(
        [1, "two"], queue="mail.out-1", priority=-7, delay=60, max_attempts=2, timeout=1.5
    )
    assert (job.queue, job.payload, job.priority) == ("mail.out-1", [1, "two"], -7)
    assert (job.max_attempts, job.timeout) == (2, 1.5)
    assert timedelta(seconds=59) < job.run_at - job.created_at < timedelta(seconds=61)
    assert queue.get(job.id) == job


def test_an_enqueue_with_the_options_of_an_earlier_one_stores_the_same(
    queue: durq.JobQueue,
) -> None:
    # The second call of each pair reuses the first's checked options (JobQueue.enqueue).
    retry = RetryPolicy(base=2.0, cap=30.0, jitter=0.0)
    options: list[dict[str, Any]] = [
        {},
        {"queue": "mail", "priority": 3, "delay": 60, "max_attempts": 2, "timeout": 1.5},
        {"task": "send", "retry": retry, "delay": 0.5},
        {"task": "send"},
        {"retry": retry},
    ]
    for kwargs in options:
        payload = {"to": ["a@example.com"]}
        first, second = queue.enqueue(payload, **kwargs), queue.enqueue(payload, **kwargs)
        assert first.id < second.id
        for job in (first, second):
            assert queue.get(job.id) == job
            assert job.payload == payload and job.payload is not payload
        same = ("queue", "priority", "max_attempts", "timeout", "task", "retry", "state")
        assert [getattr(second, f) for f in same] == [getattr(first, f) for f in same]
        waits = [job.run_at - job.created_at for job in (first, second)]
        assert abs(waits[1] - waits[0]) < timedelta(milliseconds=1)
    payload["to"].append("changed after the call")
    assert queue.get(second.id).payload == {"to": ["a@example.com"]}


def test_the_job_an_enqueue_returns_is_a_job_in_every_way(queue: durq.JobQueue) -> None:
    # SQLite's lone enqueue builds the job's fields when they are first read (lazy_job.py).
    for _ in range(2):  # the second call takes the checked-options path
        job, read = queue.enqueue("text", task="t"), None
        assert isinstance(job, durq.Job)
        read = queue.get(job.id)
        assert job == read and read == job and not job != read  # noqa: SIM202
        assert hash(job) == hash(read) and repr(job) == repr(read) and repr(job).startswith("Job(")
        assert job.to_dict() == read.to_dict()
        assert dataclasses.asdict(job) == dataclasses.asdict(read)
        for copied in (pickle.loads(pickle.dumps(job)), copy.copy(job), copy.deepcopy(job)):
            assert type(copied) is durq.Job and copied == read
        moved = dataclasses.replace(job, priority=7)
        assert moved.priority == 7 and dataclasses.replace(moved, priority=0) == read
        assert job != queue.enqueue("text", task="t")
        with pytest.raises(AttributeError, match="no_such_field"):
            job.no_such_field  # type: ignore[attr-defined]  # noqa: B018


def test_threads_reading_a_new_job_at_once_see_the_same_fields(queue: durq.JobQueue) -> None:
    queue.enqueue({"warm": True})
    for _ in range(20):
        job = queue.enqueue({"to": ["a@example.com"]})
        start = threading.Barrier(8)
        seen: list[object] = []

        def read(job: durq.Job, start: threading.Barrier, seen: list[object]) -> None:
            start.wait()
            seen.append(job.payload)

        threads = [threading.Thread(target=read, args=(job, start, seen)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) == 8 and all(payload is job.payload for payload in seen)


@pytest.mark.parametrize("payload", [None, 0, -1.5, "text", True, [], {"a": None}])
def test_any_json_value_is_a_payload(queue: durq.JobQueue, payload: object) -> None:
    job = queue.enqueue(payload)
    assert queue.get(job.id).payload == payload


def test_ids_are_unique_and_ordered_by_creation(queue: durq.JobQueue) -> None:
    ids = [queue.enqueue(n).id for n in range(30)]
    ids += [job.id for job in queue.enqueue_many(range(30, 60))]
    assert ids == sorted(ids)
    assert len(set(ids)) == 60


# -- claim ---------------------------------------------------------------------------------------


def test_claim_on_an_empty_queue_returns_none(queue: durq.JobQueue) -> None:
    assert queue.claim("w1") is None
    queue.enqueue(1, queue="other")
    assert queue.claim("w1", queues=["default"]) is None


def test_claim_starts_an_attempt_under_a_lease(queue: durq.JobQueue) -> None:
    job = queue.enqueue({"n": 1})
    t0 = datetime.now(UTC)
    claimed = queue.claim("w1", lease=40.0)
    t1 = datetime.now(UTC)
    assert claimed is not None
    assert claimed.id == job.id and claimed.state is JobState.RUNNING
    assert claimed.attempts == 1 and claimed.worker_id == "w1" and claimed.lease_token
    assert claimed.lease_expires_at is not None
    lease = timedelta(seconds=40)
    slack = timedelta(milliseconds=5)  # timestamps are stored to the microsecond or so
    assert t0 + lease - slack <= claimed.lease_expires_at <= t1 + lease + slack
    assert queue.get(job.id) == claimed
    [attempt] = queue.attempts(job.id)
    assert (attempt.attempt, attempt.worker_id, attempt.outcome) == (1, "w1", None)
    assert attempt.finished_at is None
    assert queue.claim("w2") is None  # nobody else gets a running job


def test_claim_takes_only_the_queues_asked_for(queue: durq.JobQueue) -> None:
    a = queue.enqueue("a", queue="a")
    b = queue.enqueue("b", queue="b")
    queue.enqueue("c", queue="c")
    first = queue.claim("w", queues=["b", "a"])
    second = queue.claim("w", queues=["b", "a"])
    assert first is not None and second is not None
    assert [first.id, second.id] == [a.id, b.id]  # oldest first across the listed queues
    assert queue.claim("w", queues=["a", "b"]) is None
    third = queue.claim("w")
    assert third is not None and third.queue == "c"


def test_claim_order_is_priority_then_age(queue: durq.JobQueue) -> None:
    low = queue.enqueue("low", priority=-1)
    a = queue.enqueue("a")
    b = queue.enqueue("b", priority=5)
    c = queue.enqueue("c")
    d = queue.enqueue("d", priority=5)
    e = queue.enqueue("e", priority=5, queue="other")
    order = []
    while (job := queue.claim("w")) is not None:
        order.append(job.id)
    assert order == [b.id, d.id, e.id, a.id, c.id, low.id]


def test_a_delayed_job_waits_for_its_time(queue: durq.JobQueue) -> None:
    much_later = queue.enqueue("much later", delay=600)
    later = queue.enqueue("later", delay=0.3)
    now = queue.enqueue("now", priority=-1)  # a delayed job blocks nothing behind it
    claimed: list[str] = []
    deadline = time.monotonic() + 30
    while len(claimed) < 2:
        job = queue.claim("w")
        if job is None:
            assert time.monotonic() < deadline, "the delayed job never became claimable"
            time.sleep(0.02)
            continue
        claimed.append(job.id)
        if job.id == later.id:
            assert datetime.now(UTC) >= later.run_at, "claimed before its time"
    assert sorted(claimed) == sorted([later.id, now.id])
    assert queue.claim("w") is None
    assert queue.get(much_later.id).state is JobState.QUEUED
    assert queue.stats()["queues"]["default"]["oldest_queued_age"] is None  # none is ready


def test_a_fresh_lease_token_each_claim(queue: durq.JobQueue) -> None:
    first = running(queue)
    queue.release(first)
    again = queue.claim("w1")
    assert again is not None and again.id == first.id
    assert again.lease_token and again.lease_token != first.lease_token


# -- heartbeat -----------------------------------------------------------------------------------


def test_heartbeat_renews_the_lease_and_keeps_the_claims_token(queue: durq.JobQueue) -> None:
    job = queue.enqueue("x")
    claimed = queue.claim("w1", lease=5.0)
    assert claimed is not None and claimed.lease_expires_at is not None
    renewed = queue.heartbeat(claimed, lease=100.0)
    assert renewed.state is JobState.RUNNING and renewed.id == job.id
    assert renewed.lease_expires_at is not None
    assert renewed.lease_expires_at - claimed.lease_expires_at > timedelta(seconds=90)
    assert queue.get(job.id).lease_expires_at == renewed.lease_expires_at
    assert renewed.attempts == 1 and len(queue.attempts(job.id)) == 1
    # The worker keeps the Job its claim returned; it stays valid while the lease is renewed.
    assert queue.complete(claimed, 1).state is JobState.SUCCEEDED


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.UNPROCESSABLE, JobState.CANCELLED])
def test_heartbeat_after_the_attempt_ended_is_refused(
    queue: durq.JobQueue, state: JobState
) -> None:
    job = running(queue)
    if state is JobState.SUCCEEDED:
        queue.complete(job)
    elif state is JobState.UNPROCESSABLE:
        queue.fail(job, "no", retry=False)
    else:
        queue.cancel(queue.fail(job, "no", retry=False).id)
    refused(queue, lambda: queue.heartbeat(job), LeaseLost)


# -- complete ------------------------------------------------------------------------------------


def test_complete_stores_the_result(queue: durq.JobQueue) -> None:
    job = running(queue)
    done = queue.complete(job, {"total": 3})
    assert done.state is JobState.SUCCEEDED and done.result == {"total": 3}
    assert done.worker_id is done.lease_token is done.lease_expires_at is None
    assert done.attempts == 1
    assert queue.get(job.id) == done
    [attempt] = queue.attempts(job.id)
    assert (attempt.worker_id, attempt.outcome, attempt.error) == ("w1", Outcome.SUCCEEDED, None)
    assert attempt.finished_at is not None and attempt.finished_at >= attempt.started_at


def test_complete_twice_is_refused(queue: durq.JobQueue) -> None:
    job = running(queue)
    queue.complete(job, 1)
    refused(queue, lambda: queue.complete(job, 2), LeaseLost)
    assert queue.get(job.id).result == 1


def test_worker_calls_on_a_queued_job_are_refused(queue: durq.JobQueue) -> None:
    job = queue.enqueue("x")
    refused(queue, lambda: queue.complete(job), LeaseLost)
    refused(queue, lambda: queue.fail(job, "e"), LeaseLost)
    refused(queue, lambda: queue.release(job), LeaseLost)
    refused(queue, lambda: queue.heartbeat(job), LeaseLost)


# -- fail ----------------------------------------------------------------------------------------


def test_fail_with_attempts_left_queues_it_again_after_a_backoff(queue: durq.JobQueue) -> None:
    job = running(queue)
    failed = queue.fail(job, "Traceback: boom")
    assert failed.state is JobState.QUEUED and failed.attempts == 1
    assert failed.last_error == "Traceback: boom"
    assert failed.worker_id is failed.lease_token is None
    # default backoff: 1 s x 2^0, +-25 %
    wait = (failed.run_at - failed.updated_at).total_seconds()
    assert 0.75 - 0.01 <= wait <= 1.25 + 0.01
    again = queue.claim("w2")
    if again is not None:  # only once its run_at has come (a slow machine may get there)
        assert datetime.now(UTC) >= failed.run_at
    [attempt] = queue.attempts(job.id)
    assert (attempt.outcome, attempt.error, attempt.worker_id) == (
        Outcome.FAILED,
        "Traceback: boom",
        "w1",
    )


def test_a_failed_job_is_not_claimed_before_its_backoff(connect_queue: ConnectQueue) -> None:
    q = connect_queue(retry=RetryPolicy(base=600, cap=3600))
    job = running(q)
    failed = q.fail(job, "boom")
    assert 450 <= (failed.run_at - failed.updated_at).total_seconds() <= 750
    assert q.claim("w2") is None
    assert q.stats()["queues"]["default"]["oldest_queued_age"] is None  # queued, not ready


def test_backoff_doubles_with_each_attempt_up_to_the_cap(connect_queue: ConnectQueue) -> None:
    q = connect_queue(retry=RetryPolicy(base=0.02, cap=0.05, jitter=0.25))
    q.enqueue("x", max_attempts=10)
    waits = []
    for _ in range(4):
        deadline = time.monotonic() + 10
        while (job := q.claim("w")) is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        failed = q.fail(job, "again")
        waits.append((failed.run_at - failed.updated_at).total_seconds())
    slack = 0.001
    assert 0.015 - slack <= waits[0] <= 0.025 + slack
    assert 0.03 - slack <= waits[1] <= 0.05 + slack
    assert all(w <= 0.05 + slack for w in waits[2:])
    assert q.get(job.id).attempts == 4


def test_fail_with_no_attempts_left_is_unprocessable(queue: durq.JobQueue) -> None:
    job = running(queue, max_attempts=1)
    failed = queue.fail(job, "boom", retry=True)
    assert failed.state is JobState.UNPROCESSABLE and failed.last_error == "boom"
    assert failed.attempts == 1
    assert queue.claim("w") is None
    assert outcomes(queue, job.id) == [Outcome.FAILED]


def test_fail_without_retry_is_unprocessable_at_once(queue: durq.JobQueue) -> None:
    job = running(queue)
    failed = queue.fail(job, "bad input", retry=False)
    assert failed.state is JobState.UNPROCESSABLE and failed.attempts == 1
    assert failed.last_error == "bad input"
    assert queue.claim("w") is None
    [attempt] = queue.attempts(job.id)
    assert (attempt.outcome, attempt.error) == (Outcome.UNPROCESSABLE, "bad input")


def test_fail_twice_is_refused(queue: durq.JobQueue) -> None:
    job = running(queue)
    queue.fail(job, "one")
    refused(queue, lambda: queue.fail(job, "two"), LeaseLost)
    refused(queue, lambda: queue.complete(job), LeaseLost)


# -- release -------------------------------------------------------------------------------------


def test_release_queues_it_now_without_counting_the_attempt(queue: durq.JobQueue) -> None:
    job = running(queue, max_attempts=1)
    released = queue.release(job)
    assert released.state is JobState.QUEUED and released.attempts == 0
    assert released.worker_id is released.lease_token is None
    assert released.run_at <= datetime.now(UTC)
    again = queue.claim("w2")  # claimable at once; max_attempts=1 still allows it
    assert again is not None and again.id == job.id and again.attempts == 1
    assert queue.complete(again).state is JobState.SUCCEEDED
    history = queue.attempts(job.id)
    assert [(a.worker_id, a.outcome) for a in history] == [
        ("w1", Outcome.RELEASED),
        ("w2", Outcome.SUCCEEDED),
    ]
    refused(queue, lambda: queue.release(again), LeaseLost)


# -- resubmit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.UNPROCESSABLE, JobState.CANCELLED])
def test_resubmit_a_finished_job_resets_its_attempts(queue: durq.JobQueue, state: JobState) -> None:
    job = finished(queue, state)
    again = queue.resubmit(job.id)
    assert again.state is JobState.QUEUED and again.attempts == 0
    assert again.result is None and again.last_error is None and again.worker_id is None
    assert again.run_at <= datetime.now(UTC)
    assert queue.get(job.id) == again
    claimed = queue.claim("w9")
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 1


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.RUNNING])
def test_resubmit_a_live_job_is_refused(queue: durq.JobQueue, state: JobState) -> None:
    job = queue.enqueue("x") if state is JobState.QUEUED else running(queue)
    refused(queue, lambda: queue.resubmit(job.id), InvalidState)


# -- cancel --------------------------------------------------------------------------------------


def test_cancel_a_queued_job(queue: durq.JobQueue) -> None:
    job = queue.enqueue("x")
    cancelled = queue.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED and queue.get(job.id) == cancelled
    assert queue.claim("w") is None


def test_cancel_an_unprocessable_job(queue: durq.JobQueue) -> None:
    job = finished(queue, JobState.UNPROCESSABLE)
    cancelled = queue.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED and cancelled.last_error == "no"


def test_cancel_a_running_job_ends_its_lease(queue: durq.JobQueue) -> None:
    job = running(queue, "w1")
    cancelled = queue.cancel(job.id)

    assert cancelled.state is JobState.CANCELLED
    assert (cancelled.worker_id, cancelled.lease_token, cancelled.lease_expires_at) == (None,) * 3
    assert outcomes(queue, job.id) == [Outcome.CANCELLED]
    # Whatever the worker reports afterwards is refused, and says why.
    for late in (lambda: queue.complete(job, "late"), lambda: queue.heartbeat(job)):
        with pytest.raises(LeaseLost, match="the job is cancelled now") as raised:
            late()
        assert raised.value.state == JobState.CANCELLED
    answers, claimed = queue.settle([durq.Finished(job, Outcome.SUCCEEDED)])
    assert isinstance(answers[0], LeaseLost) and claimed == []
    assert queue.get(job.id) == cancelled
    resubmitted = queue.resubmit(job.id)  # and it can be queued again, as any finished job
    assert (resubmitted.state, resubmitted.attempts) == (JobState.QUEUED, 0)


def test_cancel_all_running_jobs(queue: durq.JobQueue) -> None:
    queue.enqueue_many([{"n": n} for n in range(3)], queue="a")
    queue.enqueue("other", queue="b")
    held = queue.claim_many("w", queues=["a", "b"], limit=4)
    assert queue.cancel_all("running", queue="a") == 3
    for job in held:
        state = queue.get(job.id).state
        assert state is (JobState.RUNNING if job.queue == "b" else JobState.CANCELLED)
        assert outcomes(queue, job.id) == [None if job.queue == "b" else Outcome.CANCELLED]


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.CANCELLED])
def test_cancel_is_refused_otherwise(queue: durq.JobQueue, state: JobState) -> None:
    job = finished(queue, state)
    refused(queue, lambda: queue.cancel(job.id), InvalidState)


# -- delete --------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.UNPROCESSABLE, JobState.CANCELLED])
def test_delete_a_finished_job_and_its_history(queue: durq.JobQueue, state: JobState) -> None:
    job = finished(queue, state)
    keep = queue.enqueue("keep")
    history = len(queue.attempts(job.id))

    def attempts_kept() -> int:
        return sum(counts[-1] for counts, _ in queue.attempt_durations([1.0]).values())

    before = attempts_kept()
    assert queue.delete(job.id) is None
    assert attempts_kept() == before - history  # its history went with it
    with pytest.raises(durq.JobNotFound):
        queue.get(job.id)
    with pytest.raises(durq.JobNotFound):
        queue.attempts(job.id)
    assert queue.get(keep.id) == keep


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.RUNNING])
def test_delete_a_live_job_is_refused(queue: durq.JobQueue, state: JobState) -> None:
    job = queue.enqueue("x") if state is JobState.QUEUED else running(queue)
    refused(queue, lambda: queue.delete(job.id), InvalidState)


# -- pause / resume ------------------------------------------------------------------------------


def test_a_paused_queue_keeps_its_jobs_and_is_skipped(queue: durq.JobQueue) -> None:
    job = queue.enqueue("x")
    queue.pause("default")
    later = queue.enqueue("y")  # enqueue still works
    other = queue.enqueue("z", queue="other")
    assert queue.stats()["queues"]["default"]["paused"] is True
    assert queue.claim("w", queues=["default"]) is None
    claimed = queue.claim("w")  # every queue: only the one not paused
    assert claimed is not None and claimed.id == other.id
    assert queue.claim("w") is None
    assert queue.get(job.id).state is JobState.QUEUED
    assert queue.get(later.id).state is JobState.QUEUED
    queue.resume("default")
    assert queue.stats()["queues"]["default"]["paused"] is False
    first, second = queue.claim("w"), queue.claim("w")
    assert first is not None and second is not None
    assert [first.id, second.id] == [job.id, later.id]


def test_pause_a_queue_before_it_has_jobs(queue: durq.JobQueue) -> None:
    queue.pause("future")
    queue.enqueue("x", queue="future")
    assert queue.claim("w") is None
    assert queue.stats()["queues"]["future"]["paused"] is True
    queue.resume("future")
    assert queue.claim("w") is not None


def test_a_paused_queue_still_finishes_running_jobs(queue: durq.JobQueue) -> None:
    job = running(queue)
    queue.pause("default")
    assert queue.complete(job, 1).state is JobState.SUCCEEDED


# -- dedupe --------------------------------------------------------------------------------------


def test_dedupe_key_returns_the_live_job(queue: durq.JobQueue) -> None:
    first = queue.enqueue({"n": 1}, dedupe_key="order-7")
    again = queue.enqueue({"n": 2}, dedupe_key="order-7", priority=9)
    assert again == first
    other_queue = queue.enqueue({"n": 3}, queue="other", dedupe_key="order-7")
    assert other_queue.id != first.id
    claimed = queue.claim("w", queues=["default"])
    assert claimed is not None
    while_running = queue.enqueue({"n": 4}, dedupe_key="order-7")
    assert while_running.id == first.id and while_running.state is JobState.RUNNING
    assert len(queue.list_jobs(queue="default")) == 1

    queue.complete(claimed)
    after = queue.enqueue({"n": 5}, dedupe_key="order-7")
    assert after.id != first.id and after.state is JobState.QUEUED and after.payload == {"n": 5}
    assert len(queue.list_jobs(queue="default")) == 2
    # The finished job cannot come back while the new one holds the key.
    refused(queue, lambda: queue.resubmit(first.id), InvalidState)
    queue.cancel(after.id)
    assert queue.resubmit(first.id).state is JobState.QUEUED


def test_dedupe_key_is_free_again_after_cancel(queue: durq.JobQueue) -> None:
    first = queue.enqueue(1, dedupe_key="k")
    queue.cancel(first.id)
    second = queue.enqueue(2, dedupe_key="k")
    assert second.id != first.id and second.dedupe_key == "k"


# -- enqueue_many ----------------------------------------------------------------------------------


def test_enqueue_many_stores_all_in_order(queue: durq.JobQueue) -> None:
    jobs = queue.enqueue_many([{"n": n} for n in range(5)], queue="bulk", priority=2)
    assert [j.payload for j in jobs] == [{"n": n} for n in range(5)]
    assert all(j.state is JobState.QUEUED and j.priority == 2 for j in jobs)
    assert [queue.get(j.id) for j in jobs] == jobs
    claimed = [queue.claim("w") for _ in range(5)]
    assert [c.id for c in claimed if c] == [j.id for j in jobs]
    assert queue.enqueue_many([]) == []


def test_enqueue_many_stores_every_kind_of_payload_as_given(queue: durq.JobQueue) -> None:
    payloads: list[object] = [
        'quote " back \\ newline \n tab \t nul \u0000 line sep \u2028 é 中 🎉',
        {"nested": [1, [2, [3, {"x": None}]]], "": ""},
        12345678901234567890123,
        -0.0,
        1e300,
        0.1 + 0.2,
        None,
        True,
        [],
        {},
    ]
    policy = durq.RetryPolicy(base=2.0, cap=60.0, jitter=0.0)
    jobs = queue.enqueue_many(
        payloads, queue="kinds", max_attempts=3, timeout=9.5, task="t.kinds", retry=policy
    )
    assert [j.payload for j in jobs] == payloads
    assert [queue.get(j.id) for j in jobs] == jobs
    assert {(j.task, j.retry, j.max_attempts, j.timeout) for j in jobs} == {
        ("t.kinds", policy, 3, 9.5)
    }


def test_enqueue_many_is_all_or_nothing(queue: durq.JobQueue) -> None:
    queue.enqueue("already here")
    payloads: list[object] = [{"n": n} for n in range(10)]
    payloads[5] = {"bad": {1, 2}}
    refused(queue, lambda: queue.enqueue_many(payloads), durq.InvalidJob)
    refused(queue, lambda: queue.enqueue_many(payloads, queue="fresh"), durq.InvalidJob)
    assert "fresh" not in queue.stats()["queues"]


# -- combined calls ------------------------------------------------------------------------------


def test_complete_and_claim(queue: durq.JobQueue) -> None:
    a, b = queue.enqueue_many(["a", "b"])
    first = queue.claim("w")
    assert first is not None
    done, following = queue.complete_and_claim(first, {"r": "a"}, worker_id="w", lease=50)
    assert done.id == a.id and done.state is JobState.SUCCEEDED and done.result == {"r": "a"}
    assert following is not None and following.id == b.id
    assert following.state is JobState.RUNNING and following.worker_id == "w"
    done, nothing = queue.complete_and_claim(following, None, worker_id="w")
    assert done.state is JobState.SUCCEEDED and nothing is None
    assert outcomes(queue, a.id) == outcomes(queue, b.id) == [Outcome.SUCCEEDED]


def test_fail_and_claim(queue: durq.JobQueue) -> None:
    a, b = queue.enqueue_many(["a", "b"], max_attempts=1)
    first = queue.claim("w")
    assert first is not None
    failed, following = queue.fail_and_claim(first, "boom", worker_id="w", queues=["default"])
    assert failed.id == a.id and failed.state is JobState.UNPROCESSABLE
    assert following is not None and following.id == b.id
    failed, nothing = queue.fail_and_claim(following, "no", retry=False, worker_id="w")
    assert failed.state is JobState.UNPROCESSABLE and nothing is None
    assert outcomes(queue, b.id) == [Outcome.UNPROCESSABLE]


def test_combined_calls_are_fenced_and_claim_nothing(queue: durq.JobQueue) -> None:
    job = running(queue)
    queue.complete(job)
    queue.enqueue("next")
    refused(queue, lambda: queue.complete_and_claim(job, worker_id="w"), LeaseLost)
    refused(queue, lambda: queue.fail_and_claim(job, "e", worker_id="w"), LeaseLost)


def test_claim_from_many_queues(queue: durq.JobQueue) -> None:
    # More queues than SQLite allows terms in one compound SELECT (500).
    names = [f"tenant-{n:03}" for n in range(600)]
    for n, name in enumerate(names):
        queue.enqueue({"n": n}, queue=name, priority=1 if n in (123, 456) else 0)
    queue.pause("tenant-123")
    first = queue.claim("w")
    assert first is not None and first.queue == "tenant-456"
    second = queue.claim("w", queues=names[::-1])
    assert second is not None and second.queue == "tenant-000"
    third = queue.claim("w", queues=names[100:])
    assert third is not None and third.queue == "tenant-100"
    assert queue.claim("w", queues=["tenant-123", "tenant-456"]) is None
