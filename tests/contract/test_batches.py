"""The batch calls a worker with many slots uses: ``claim_many``, ``settle`` and
``heartbeat_many``. Each keeps the guarantees of the one-job calls, per job."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import durq
from durq import Finished, InvalidJob, JobNotFound, JobState, LeaseLost, Outcome

from .conftest import snapshot


def test_claim_many_takes_jobs_in_claim_order_each_with_its_own_lease(
    queue: durq.JobQueue,
) -> None:
    low = queue.enqueue_many([{"n": n} for n in range(4)])
    high = queue.enqueue({"n": "high"}, priority=5)
    queue.enqueue({"n": "later"}, delay=3600)

    claimed = queue.claim_many("w", lease=60, limit=3)

    assert [j.id for j in claimed] == [high.id, low[0].id, low[1].id]
    assert len({j.lease_token for j in claimed}) == 3
    assert all(j.state is JobState.RUNNING and j.attempts == 1 for j in claimed)
    for job in claimed:
        [attempt] = queue.attempts(job.id)
        assert (attempt.worker_id, attempt.outcome) == ("w", None)
    rest = queue.claim_many("w", limit=10)
    assert [j.id for j in rest] == [low[2].id, low[3].id]  # the delayed one is not ready
    assert queue.claim_many("w", limit=10) == []


def test_claim_many_honours_queues_and_pauses(queue: durq.JobQueue) -> None:
    mail = queue.enqueue_many([{"q": "mail"}] * 2, queue="mail")
    queue.enqueue_many([{"q": "sms"}] * 2, queue="sms")
    queue.pause("sms")
    got = queue.claim_many("w", limit=10)
    assert {j.id for j in got} == {j.id for j in mail}
    queue.resume("sms")
    assert {j.queue for j in queue.claim_many("w", queues=["sms", "mail"], limit=10)} == {"sms"}


@pytest.mark.parametrize("limit", [0, -1, 1001, 2.5, True, "3"])
def test_claim_many_refuses_a_bad_limit(queue: durq.JobQueue, limit: object) -> None:
    queue.enqueue("x")
    before = snapshot(queue)
    with pytest.raises(InvalidJob):
        queue.claim_many("w", limit=limit)  # type: ignore[arg-type]
    assert snapshot(queue) == before


def test_settle_writes_each_outcome_and_claims_in_one_call(queue: durq.JobQueue) -> None:
    queue.enqueue_many([{"n": n} for n in range(6)], max_attempts=3)
    a, b, c, d = queue.claim_many("w", lease=60, limit=4)

    answers, claimed = queue.settle(
        [
            Finished(a, Outcome.SUCCEEDED, result={"ok": 1}),
            Finished(b, Outcome.FAILED, error="boom"),
            Finished(c, Outcome.UNPROCESSABLE, error="never"),
            Finished(d, Outcome.RELEASED),
        ],
        worker_id="w",
        lease=60,
        claim=5,
    )

    assert [type(x) for x in answers] == [durq.Job] * 4
    done, failed, dead, released = answers
    assert (done.state, done.result) == (JobState.SUCCEEDED, {"ok": 1})
    assert (failed.state, failed.last_error) == (JobState.QUEUED, "boom")
    assert failed.run_at > done.updated_at  # the retry waits out its backoff
    assert (dead.state, dead.last_error) == (JobState.UNPROCESSABLE, "never")
    assert (released.state, released.attempts) == (JobState.QUEUED, 0)
    outcomes = [queue.attempts(j.id)[0].outcome for j in (a, b, c, d)]
    assert outcomes == [Outcome.SUCCEEDED, Outcome.FAILED, Outcome.UNPROCESSABLE, Outcome.RELEASED]
    # The released job is ready again at once, so it is among the claimed, with the rest.
    assert d.id in {j.id for j in claimed} and len(claimed) == 3


def test_one_stale_token_refuses_only_its_job_and_claims_nothing(
    connect_queue: Callable[..., durq.JobQueue],
) -> None:
    q = connect_queue()
    q.enqueue_many([{"n": n} for n in range(4)])
    first, second = q.claim_many("w", lease=60, limit=2)
    # `first` goes stale: its token no longer holds once the job was released.
    q.release(first)

    answers, claimed = q.settle(
        [Finished(first, Outcome.SUCCEEDED), Finished(second, Outcome.SUCCEEDED)],
        worker_id="w",
        claim=5,
    )

    refused, done = answers
    assert isinstance(refused, LeaseLost) and refused.state == JobState.QUEUED
    assert "lease token is stale" in str(refused)
    assert isinstance(done, durq.Job) and done.state is JobState.SUCCEEDED
    assert claimed == []  # nothing claimed while this worker has a lease to look into
    assert q.get(first.id).state is JobState.QUEUED


def test_settle_checks_everything_before_it_writes(queue: durq.JobQueue) -> None:
    queue.enqueue_many([{"n": n} for n in range(3)])
    a, b = queue.claim_many("w", limit=2)
    before = snapshot(queue)
    bad_batches: list[list[object]] = [
        [Finished(a, Outcome.SUCCEEDED), Finished(b, Outcome.SUCCEEDED, result={1, 2})],
        [Finished(a, Outcome.SUCCEEDED), "not a Finished"],
        [Finished(a, Outcome.LOST)],
        [Finished("not a job", Outcome.SUCCEEDED)],  # type: ignore[arg-type]
    ]
    for batch in bad_batches:
        with pytest.raises(InvalidJob) as raised:
            queue.settle(batch, worker_id="w", claim=1)  # type: ignore[arg-type]
        assert "\n" not in str(raised.value)
    with pytest.raises(InvalidJob, match=f"job {b.id}"):
        queue.settle([Finished(b, Outcome.SUCCEEDED, result={1, 2})])
    with pytest.raises(InvalidJob, match="worker_id"):
        queue.settle([Finished(a, Outcome.SUCCEEDED)], claim=1)
    assert snapshot(queue) == before


def test_settle_with_nothing_to_write_only_claims(queue: durq.JobQueue) -> None:
    queue.enqueue_many([1, 2])
    assert queue.settle([]) == ([], [])
    answers, claimed = queue.settle([], worker_id="w", claim=5)
    assert answers == [] and len(claimed) == 2


def test_heartbeat_many_renews_each_lease_and_refuses_stale_ones(
    queue: durq.JobQueue,
) -> None:
    queue.enqueue_many([{"n": n} for n in range(3)])
    a, b, c = queue.claim_many("w", lease=5, limit=3)
    queue.complete(c, None)
    gone = durq.Job(**{**vars_of(a), "id": "01234567-89ab-7cde-8f01-23456789abcd"})

    answers = queue.heartbeat_many([a, b, c, gone], lease=600)

    renewed_a, renewed_b, stale_c, missing = answers
    for before, after in ((a, renewed_a), (b, renewed_b)):
        assert isinstance(after, durq.Job) and after.lease_token == before.lease_token
        assert after.lease_expires_at is not None and before.lease_expires_at is not None
        assert after.lease_expires_at > before.lease_expires_at
    assert isinstance(stale_c, LeaseLost) and stale_c.state == JobState.SUCCEEDED
    assert isinstance(missing, JobNotFound)
    assert queue.heartbeat_many([]) == []


def vars_of(job: durq.Job) -> dict[str, object]:
    return {name: getattr(job, name) for name in job.__dataclass_fields__}
