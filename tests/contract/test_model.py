"""Model-based test: hypothesis drives a backend beside an in-memory model of the state
machine in docs/design.md and compares the two after every step.

Lease expiry is made, not waited for: a heartbeat with a lease of 1 ms and a 2 ms sleep
leave a job whose lease has run out, which the next claim must rescue (and whose worker may
still finish it, or renew its lease, until then).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import durq
from durq import InvalidState, JobNotFound, JobState, LeaseLost, Outcome

from .conftest import all_jobs

QUEUES = ("a", "b")
LOST = object()  # last_error set by a rescue: its text is the backend's own
FINISHED = {JobState.SUCCEEDED, JobState.UNPROCESSABLE, JobState.CANCELLED}
LIVE = {JobState.QUEUED, JobState.RUNNING}

queue_choices = st.sampled_from([None, ("a",), ("b",), ("b", "a")])
picks = st.integers(min_value=0, max_value=10_000)


@dataclasses.dataclass
class ModelJob:
    id: str
    queue: str
    payload: Any
    priority: int
    max_attempts: int
    dedupe_key: str | None
    ready: int  # when it last became ready, in model steps: stands for run_at
    state: JobState = JobState.QUEUED
    attempts: int = 0
    history: list[tuple[str, Outcome | None]] = dataclasses.field(default_factory=list)
    held: durq.Job | None = None  # what the current claim returned (its lease token)
    expired: bool = False  # lease run out; the next claim rescues it
    result: Any = None
    last_error: Any = None


class QueueModel(RuleBasedStateMachine):
    make_database: Callable[[], str]  # set by the test: a fresh database's URL per example

    def __init__(self) -> None:
        super().__init__()
        self.q = durq.connect(
            type(self).make_database(),
            # No backoff: a failed job is ready again at once, so the model knows claim order.
            retry=durq.RetryPolicy(base=0.0, cap=0.0),
        )
        self.jobs: dict[str, ModelJob] = {}
        self.paused: set[str] = set()
        self.stale: list[durq.Job] = []  # Jobs whose lease token no longer holds
        self.clock = 0
        self.n = 0

    def teardown(self) -> None:
        self.q.close()

    # -- model helpers ---------------------------------------------------------------------

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def in_state(self, *states: JobState) -> list[ModelJob]:
        return [j for j in self.jobs.values() if j.state in states]

    def holding(self) -> list[ModelJob]:
        """Running jobs. A worker whose lease ran out still holds its job until another
        claim rescues it: until then its calls are honoured."""
        return self.in_state(JobState.RUNNING)

    def unexpired(self) -> list[ModelJob]:
        return [j for j in self.holding() if not j.expired]

    def pick(self, jobs: Sequence[ModelJob], n: int) -> ModelJob:
        return sorted(jobs, key=lambda j: j.id)[n % len(jobs)]

    def live_duplicate(self, queue: str, key: str | None) -> ModelJob | None:
        if key is None:
            return None
        for j in self.jobs.values():
            if j.queue == queue and j.dedupe_key == key and j.state in LIVE:
                return j
        return None

    def end_attempt(self, j: ModelJob, outcome: Outcome) -> None:
        worker, _ = j.history[-1]
        j.history[-1] = (worker, outcome)
        assert j.held is not None
        self.stale.append(j.held)
        j.held, j.expired = None, False

    def rescue(self) -> None:
        """What the start of every claim does to jobs whose lease ran out."""
        for j in self.in_state(JobState.RUNNING):
            if j.expired:
                self.end_attempt(j, Outcome.LOST)
                j.last_error = LOST
                j.state = (
                    JobState.UNPROCESSABLE if j.attempts >= j.max_attempts else JobState.QUEUED
                )

    def next_claim(self, queues: tuple[str, ...] | None, worker: str) -> ModelJob | None:
        self.rescue()
        wanted = QUEUES if queues is None else queues
        ready = [
            j
            for j in self.in_state(JobState.QUEUED)
            if j.queue in wanted and j.queue not in self.paused
        ]
        if not ready:
            return None
        j = min(ready, key=lambda j: (-j.priority, j.ready, j.id))
        j.state = JobState.RUNNING
        j.attempts += 1
        j.history.append((worker, None))
        return j

    def check_claimed(self, expected: ModelJob | None, got: durq.Job | None) -> None:
        if expected is None:
            assert got is None
            return
        assert got is not None, f"expected to claim {expected.id}"
        assert got.id == expected.id
        assert got.state is JobState.RUNNING and got.lease_token
        expected.held = got

    # -- rules -------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        assert self.q.stats()["queues"] == {}

    @rule(
        queue=st.sampled_from(QUEUES),
        priority=st.integers(-1, 1),
        max_attempts=st.sampled_from([1, 1, 2, 3]),
        key=st.none() | st.sampled_from(["k1", "k2"]),
    )
    def enqueue(self, queue: str, priority: int, max_attempts: int, key: str | None) -> None:
        self.n += 1
        payload = {"n": self.n}
        job = self.q.enqueue(
            payload, queue=queue, priority=priority, max_attempts=max_attempts, dedupe_key=key
        )
        duplicate = self.live_duplicate(queue, key)
        if duplicate is not None:
            assert job.id == duplicate.id and job.state is duplicate.state
            return
        assert job.id not in self.jobs and job.state is JobState.QUEUED
        self.jobs[job.id] = ModelJob(
            job.id, queue, payload, priority, max_attempts, key, ready=self.tick()
        )

    @rule(queue=st.sampled_from(QUEUES), count=st.integers(0, 3), poison=st.booleans())
    def enqueue_many(self, queue: str, count: int, poison: bool) -> None:
        payloads: list[Any] = [{"many": self.n + i} for i in range(count)]
        self.n += count
        if poison and count:
            payloads[count // 2] = {"not json": float("nan")}
            with pytest.raises(durq.InvalidJob):
                self.q.enqueue_many(payloads, queue=queue)
            return
        jobs = self.q.enqueue_many(payloads, queue=queue)
        assert [j.payload for j in jobs] == payloads
        ready = self.tick()
        for job, payload in zip(jobs, payloads, strict=True):
            self.jobs[job.id] = ModelJob(job.id, queue, payload, 0, 5, None, ready=ready)

    @rule(queues=queue_choices, worker=st.sampled_from(["w1", "w2"]))
    def claim(self, queues: tuple[str, ...] | None, worker: str) -> None:
        got = self.q.claim(worker, queues=queues, lease=300)
        self.check_claimed(self.next_claim(queues, worker), got)

    @precondition(lambda self: self.holding())
    @rule(pick=picks)
    def heartbeat(self, pick: int) -> None:
        j = self.pick(self.holding(), pick)
        assert j.held is not None
        renewed = self.q.heartbeat(j.held, lease=300)
        assert renewed.state is JobState.RUNNING and renewed.attempts == j.attempts
        j.expired = False

    @precondition(lambda self: self.unexpired())
    @rule(pick=picks)
    def expire(self, pick: int) -> None:
        j = self.pick(self.unexpired(), pick)
        assert j.held is not None
        self.q.heartbeat(j.held, lease=0.001)
        time.sleep(0.002)
        j.expired = True

    @precondition(lambda self: self.holding())
    @rule(pick=picks, chain=st.booleans(), queues=queue_choices)
    def complete(self, pick: int, chain: bool, queues: tuple[str, ...] | None) -> None:
        """Complete; with ``chain``, claim the next job of ``queues`` in the same call."""
        j = self.pick(self.holding(), pick)
        held = j.held
        assert held is not None and held.worker_id is not None
        result = {"done": j.id}
        if chain:
            done, got = self.q.complete_and_claim(
                held, result, worker_id=held.worker_id, queues=queues, lease=300
            )
        else:
            done = self.q.complete(held, result)
        assert done.state is JobState.SUCCEEDED and done.result == result
        j.state, j.result = JobState.SUCCEEDED, result
        self.end_attempt(j, Outcome.SUCCEEDED)
        if chain:
            self.check_claimed(self.next_claim(queues, held.worker_id), got)

    @precondition(lambda self: self.holding())
    @rule(pick=picks, retry=st.booleans(), chain=st.booleans())
    def fail(self, pick: int, retry: bool, chain: bool) -> None:
        j = self.pick(self.holding(), pick)
        held = j.held
        assert held is not None
        error = f"error {self.tick()}"
        if chain:
            failed, got = self.q.fail_and_claim(
                held, error, retry, worker_id="w3", queues=None, lease=300
            )
        else:
            failed = self.q.fail(held, error, retry=retry)
        again = retry and j.attempts < j.max_attempts
        j.state = JobState.QUEUED if again else JobState.UNPROCESSABLE
        j.last_error = error
        if again:
            j.ready = self.tick()
        self.end_attempt(j, Outcome.FAILED if retry else Outcome.UNPROCESSABLE)
        assert failed.state is j.state and failed.last_error == error
        if chain:
            self.check_claimed(self.next_claim(None, "w3"), got)

    @precondition(lambda self: self.holding())
    @rule(pick=picks)
    def release(self, pick: int) -> None:
        j = self.pick(self.holding(), pick)
        assert j.held is not None
        released = self.q.release(j.held)
        j.state, j.ready = JobState.QUEUED, self.tick()
        j.attempts -= 1
        self.end_attempt(j, Outcome.RELEASED)
        assert released.state is JobState.QUEUED and released.attempts == j.attempts

    @precondition(lambda self: self.stale)
    @rule(
        pick=st.integers(0, 10_000),
        action=st.sampled_from(["complete", "fail", "release", "heartbeat"]),
    )
    def stale_worker(self, pick: int, action: str) -> None:
        held = self.stale[pick % len(self.stale)]
        call = {
            "complete": lambda: self.q.complete(held, "stale"),
            "fail": lambda: self.q.fail(held, "stale"),
            "release": lambda: self.q.release(held),
            "heartbeat": lambda: self.q.heartbeat(held, lease=300),
        }[action]
        error = LeaseLost if held.id in self.jobs else (LeaseLost, JobNotFound)
        with pytest.raises(error):
            call()

    @precondition(lambda self: self.jobs)
    @rule(pick=picks)
    def cancel(self, pick: int) -> None:
        j = self.pick(list(self.jobs.values()), pick)
        if j.state in (JobState.QUEUED, JobState.RUNNING, JobState.UNPROCESSABLE):
            assert self.q.cancel(j.id).state is JobState.CANCELLED
            if j.state is JobState.RUNNING:
                self.end_attempt(j, Outcome.CANCELLED)
            j.state = JobState.CANCELLED
        else:
            with pytest.raises(InvalidState):
                self.q.cancel(j.id)

    @precondition(lambda self: self.jobs)
    @rule(pick=picks)
    def resubmit(self, pick: int) -> None:
        j = self.pick(list(self.jobs.values()), pick)
        if j.state in FINISHED and self.live_duplicate(j.queue, j.dedupe_key) is None:
            again = self.q.resubmit(j.id)
            assert again.state is JobState.QUEUED and again.attempts == 0
            j.state, j.attempts, j.ready = JobState.QUEUED, 0, self.tick()
            j.result = j.last_error = None
        else:
            with pytest.raises(InvalidState):
                self.q.resubmit(j.id)

    @precondition(lambda self: self.jobs)
    @rule(pick=picks)
    def delete(self, pick: int) -> None:
        j = self.pick(list(self.jobs.values()), pick)
        if j.state in FINISHED:
            self.q.delete(j.id)
            del self.jobs[j.id]
        else:
            with pytest.raises(InvalidState):
                self.q.delete(j.id)

    @rule(
        state=st.sampled_from(["unprocessable", "cancelled", "succeeded"]),
        queue=st.none() | st.sampled_from(QUEUES),
    )
    def resubmit_all(self, state: str, queue: str | None) -> None:
        count = self.q.resubmit_all(state, queue=queue)
        ready = self.tick()
        expected = 0
        for j in sorted(self.jobs.values(), key=lambda j: j.id):
            chosen = j.state == state and queue in (None, j.queue)
            if chosen and self.live_duplicate(j.queue, j.dedupe_key) is None:
                j.state, j.attempts, j.ready = JobState.QUEUED, 0, ready
                j.result = j.last_error = None
                expected += 1
        assert count == expected

    @rule(
        state=st.sampled_from(["queued", "running", "unprocessable"]),
        queue=st.none() | st.sampled_from(QUEUES),
    )
    def cancel_all(self, state: str, queue: str | None) -> None:
        count = self.q.cancel_all(state, queue=queue)
        chosen = [j for j in self.in_state(JobState(state)) if queue in (None, j.queue)]
        for j in chosen:
            if j.state is JobState.RUNNING:
                self.end_attempt(j, Outcome.CANCELLED)
            j.state = JobState.CANCELLED
        assert count == len(chosen)

    @rule(queue=st.sampled_from(QUEUES), paused=st.booleans())
    def pause_or_resume(self, queue: str, paused: bool) -> None:
        if paused:
            self.q.pause(queue)
            self.paused.add(queue)
        else:
            self.q.resume(queue)
            self.paused.discard(queue)

    # -- the comparison ----------------------------------------------------------------------

    @invariant()
    def backend_matches_model(self) -> None:
        stored = {job.id: job for job in all_jobs(self.q)}
        assert stored.keys() == self.jobs.keys()
        for job_id, j in self.jobs.items():
            job = stored[job_id]
            assert (job.state, job.attempts) == (j.state, j.attempts), job_id
            assert (job.queue, job.payload, job.priority) == (j.queue, j.payload, j.priority)
            assert (job.max_attempts, job.dedupe_key) == (j.max_attempts, j.dedupe_key)
            if j.state is JobState.RUNNING:
                assert j.held is not None and job.lease_token == j.held.lease_token
                assert job.worker_id == j.history[-1][0]
            else:
                assert job.worker_id is None and job.lease_token is None
            if j.state is JobState.SUCCEEDED:
                assert job.result == j.result
            if j.last_error is LOST:
                assert job.last_error is not None and "lost" in job.last_error
            else:
                assert job.last_error == j.last_error
            # Every attempt is kept, across resubmits too.
            assert [(a.worker_id, a.outcome) for a in self.q.attempts(job_id)] == j.history

        stats = self.q.stats()["queues"]
        for name in QUEUES:
            entry = stats.get(name)
            if entry is None:
                assert name not in self.paused
                assert not [j for j in self.jobs.values() if j.queue == name]
                continue
            assert entry["paused"] is (name in self.paused)
            for state in JobState:
                expected = sum(1 for j in self.jobs.values() if (j.queue, j.state) == (name, state))
                assert entry[state.value] == expected, (name, state)


def test_backend_follows_the_state_machine(more_databases: Callable[[], str]) -> None:
    QueueModel.make_database = staticmethod(more_databases)  # type: ignore[assignment]
    run_state_machine_as_test(
        QueueModel,
        settings=settings(
            max_examples=100,
            stateful_step_count=50,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
