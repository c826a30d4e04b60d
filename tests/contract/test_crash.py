"""Crashes and stale workers: SIGKILLed holders, expired leases, fencing, durable enqueue."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

import durq
from durq import JobState, LeaseLost, Outcome

from .conftest import snapshot, start_proc

ConnectQueue = Callable[..., durq.JobQueue]


def claim_within(q: durq.JobQueue, seconds: float, **claim: object) -> durq.Job:
    """Claim until a job comes, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while (job := q.claim(**claim)) is None:  # type: ignore[arg-type]
        assert time.monotonic() < deadline, "no job became claimable"
        time.sleep(0.05)
    return job


@pytest.mark.slow
def test_jobs_of_a_killed_worker_come_back_after_the_lease(
    queue: durq.JobQueue, queue_url: str, python_env: dict[str, str]
) -> None:
    retried = queue.enqueue_many(["r1", "r2", "r3"], queue="retry", max_attempts=3)
    once = queue.enqueue_many(["o1", "o2"], queue="once", max_attempts=1)
    holder = start_proc(python_env, "hold", queue_url, "doomed", "1.5", "retry:3", "once:2")
    assert holder.stdout is not None
    held = [holder.stdout.readline().strip() for _ in range(5)]
    assert holder.stdout.readline().strip() == "holding", holder.stderr
    assert held == [j.id for j in retried + once]
    for job_id in held:
        job = queue.get(job_id)
        assert (job.state, job.worker_id, job.attempts) == (JobState.RUNNING, "doomed", 1)

    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    expiries = [queue.get(i).lease_expires_at or datetime.now(UTC) for i in held]
    expiry, last_expiry = min(expiries), max(expiries)

    # While the dead worker's lease lasts, nobody else may take its jobs.
    asked_at = datetime.now(UTC)
    nothing = queue.claim("rescuer", lease=60)
    if asked_at < expiry:
        assert nothing is None

    rescued = [nothing] if nothing is not None else []
    while len(rescued) < 3:
        rescued.append(claim_within(queue, 30, worker_id="rescuer", lease=60))
    assert sorted(j.id for j in rescued) == sorted(j.id for j in retried)
    for job in rescued:
        assert job.state is JobState.RUNNING and job.attempts == 2  # the lost attempt counts
        assert "lost" in (queue.get(job.id).last_error or "")
        lost, current = queue.attempts(job.id)
        assert (lost.worker_id, lost.outcome) == ("doomed", Outcome.LOST)
        assert lost.finished_at is not None and "lost" in (lost.error or "")
        assert (current.worker_id, current.outcome) == ("rescuer", None)
        queue.complete(job)

    # The holder claimed the "once" jobs last, so their leases may outlive the claims above:
    # one more claim after the last lease has run out rescues whatever is left.
    while datetime.now(UTC) <= last_expiry:
        time.sleep(0.05)
    assert queue.claim("rescuer") is None
    for job in once:
        gone = queue.get(job.id)
        assert gone.state is JobState.UNPROCESSABLE and gone.attempts == 1
        assert gone.worker_id is None and gone.lease_token is None
        assert "lost" in (gone.last_error or "") and "doomed" in (gone.last_error or "")
        [lost] = queue.attempts(job.id)
        assert (lost.worker_id, lost.outcome) == ("doomed", Outcome.LOST)


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_an_expired_lease_is_rescued_by_the_next_claim(
    queue: durq.JobQueue, max_attempts: int
) -> None:
    job = queue.enqueue("x", max_attempts=max_attempts)
    held = queue.claim("frozen", lease=0.05)
    assert held is not None
    time.sleep(0.1)
    other = queue.enqueue("other", queue="elsewhere")
    # Rescue is not limited to the queues the claim asks for.
    claimed = queue.claim("rescuer", queues=["elsewhere"])
    assert claimed is not None and claimed.id == other.id
    rescued = queue.get(job.id)
    assert rescued.worker_id is None and rescued.lease_token is None
    assert rescued.attempts == 1 and "lost" in (rescued.last_error or "")
    [lost] = queue.attempts(job.id)
    assert (lost.worker_id, lost.outcome) == ("frozen", Outcome.LOST)
    if max_attempts == 1:
        assert rescued.state is JobState.UNPROCESSABLE
        assert queue.claim("rescuer") is None
    else:
        assert rescued.state is JobState.QUEUED
        again = queue.claim("rescuer")
        assert again is not None and again.id == job.id and again.attempts == 2


def expired_and_taken_over(
    connect_queue: ConnectQueue,
) -> tuple[durq.JobQueue, durq.JobQueue, durq.Job, durq.Job]:
    """Worker A's lease on a job expires and worker B claims the job: (a, b, a_job, b_job)."""
    a, b = connect_queue(), connect_queue()
    a.enqueue({"transfer": 1})
    a_job = a.claim("worker-a", lease=0.05)
    assert a_job is not None
    time.sleep(0.1)
    b_job = b.claim("worker-b", lease=60)
    assert b_job is not None and b_job.id == a_job.id
    assert b_job.attempts == 2 and b_job.lease_token != a_job.lease_token
    return a, b, a_job, b_job


def a_is_fenced_off(a: durq.JobQueue, a_job: durq.Job) -> None:
    calls: list[Callable[[], object]] = [
        lambda: a.complete(a_job, {"by": "a"}),
        lambda: a.fail(a_job, "a failed", retry=True),
        lambda: a.fail(a_job, "a failed", retry=False),
        lambda: a.heartbeat(a_job, lease=600),
        lambda: a.release(a_job),
        lambda: a.complete_and_claim(a_job, {"by": "a"}, worker_id="worker-a"),
        lambda: a.fail_and_claim(a_job, "a failed", worker_id="worker-a"),
    ]
    for call in calls:
        before = snapshot(a)
        with pytest.raises(LeaseLost):
            call()
        assert snapshot(a) == before


def test_a_stale_worker_is_fenced_off_while_the_new_one_runs(
    connect_queue: ConnectQueue,
) -> None:
    a, b, a_job, b_job = expired_and_taken_over(connect_queue)
    a.enqueue("another job, which a stale call must not claim")
    a_is_fenced_off(a, a_job)
    assert b.get(b_job.id) == b_job
    done = b.complete(b_job, {"by": "b"})
    assert done.state is JobState.SUCCEEDED and done.result == {"by": "b"}


def test_a_stale_worker_cannot_overwrite_the_newer_outcome(connect_queue: ConnectQueue) -> None:
    a, b, a_job, b_job = expired_and_taken_over(connect_queue)
    b.complete(b_job, {"by": "b"})
    a_is_fenced_off(a, a_job)
    final = b.get(b_job.id)
    assert final.state is JobState.SUCCEEDED and final.result == {"by": "b"}
    assert [(x.worker_id, x.outcome) for x in b.attempts(b_job.id)] == [
        ("worker-a", Outcome.LOST),
        ("worker-b", Outcome.SUCCEEDED),
    ]


def test_a_stale_worker_cannot_undo_a_newer_failure(connect_queue: ConnectQueue) -> None:
    a, b, a_job, b_job = expired_and_taken_over(connect_queue)
    failed = b.fail(b_job, "b failed", retry=False)
    a_is_fenced_off(a, a_job)
    assert b.get(b_job.id) == failed
    assert failed.state is JobState.UNPROCESSABLE and failed.last_error == "b failed"


@pytest.mark.parametrize("action", ["complete", "fail", "release", "heartbeat"])
def test_a_late_worker_nobody_replaced_may_still_finish(queue: durq.JobQueue, action: str) -> None:
    # Rescue happens in claim: until another worker claims the job, the lease token is not
    # stale, and the late worker's call is honoured (its work is not thrown away).
    queue.enqueue("slow")
    job = queue.claim("late", lease=0.05)
    assert job is not None
    time.sleep(0.1)
    if action == "complete":
        assert queue.complete(job, "late").state is JobState.SUCCEEDED
    elif action == "fail":
        assert queue.fail(job, "late", retry=False).state is JobState.UNPROCESSABLE
    elif action == "release":
        assert queue.release(job).state is JobState.QUEUED
    else:
        assert queue.heartbeat(job, lease=60).state is JobState.RUNNING
        assert queue.claim("other") is None  # renewed in time: nothing to rescue
    assert queue.attempts(job.id)[0].outcome is not Outcome.LOST


@pytest.mark.slow
@pytest.mark.parametrize("how", ["one", "many"])
def test_an_acknowledged_enqueue_survives_a_kill(
    queue: durq.JobQueue, queue_url: str, python_env: dict[str, str], how: str
) -> None:
    proc = start_proc(python_env, "enqueue_and_die", queue_url, how)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    ids = out.split()
    assert len(ids) == (3 if how == "many" else 1)
    for job_id in ids:
        job = queue.get(job_id)
        assert job.state is JobState.QUEUED and job.queue == how
    with durq.connect(queue_url) as fresh:  # and a new connection sees them too
        assert [j.id for j in fresh.list_jobs(queue=how)] == ids[::-1]
