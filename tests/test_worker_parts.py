"""The worker runtime's parts on their own: the settler's batch window and the event loop's
hand-off of a claim's async jobs. The runtime as a whole is tested in test_worker_runtime.py."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import durq
from durq import Outcome
from durq.job import Finished
from durq.queue import QueueSettings
from durq.worker import settler as settler_module
from durq.worker.attempt import RunningJob
from durq.worker.runners import Call
from durq.worker.settler import Settler
from durq.worker.slots import EventLoop


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    made = Clock()
    monkeypatch.setattr(settler_module.time, "monotonic", made)
    return made


def running_job(queue: durq.JobQueue, target: Any) -> RunningJob:
    job = queue.enqueue(None)
    return RunningJob(job, Call(target, (job,)), QueueSettings(), queue)


def test_a_batch_waits_its_window_while_outcomes_keep_coming(
    queue: durq.JobQueue, clock: Clock
) -> None:
    settler = Settler(queue, "w1", None, 30.0, window=1.0)
    assert settler.due_in(others_running=3) is None  # nothing pending
    for _ in range(6):  # an outcome every 0.15 s: never a fifth of the window (0.2 s) apart
        running = running_job(queue, lambda job: None)
        settler.add(running, running.released())
        assert settler.due_in(others_running=3) == pytest.approx(0.2)
        clock.now += 0.15
    # The window counts from the first outcome: 1.0 s after it, whatever came since.
    running = running_job(queue, lambda job: None)
    settler.add(running, running.released())  # at 0.9 s; quiet until 1.1 s
    clock.now += 0.05
    assert settler.due_in(others_running=3) == pytest.approx(0.05)
    clock.now += 0.06
    assert settler.due_in(others_running=3) == 0.0


def test_a_batch_whose_outcomes_stop_coming_is_due_after_a_fifth_of_the_window(
    queue: durq.JobQueue, clock: Clock
) -> None:
    settler = Settler(queue, "w1", None, 30.0, window=1.0)
    running = running_job(queue, lambda job: None)
    settler.add(running, running.released())
    clock.now += 0.1
    assert settler.due_in(others_running=5) == pytest.approx(0.1)
    clock.now += 0.1
    assert settler.due_in(others_running=5) == 0.0
    # Nothing else runs, or the batch is full: due at once, window or not.
    fresh = Settler(queue, "w1", None, 30.0, window=1.0, max_batch=2)
    fresh.add(running, running.released())
    assert fresh.due_in(others_running=0) == 0.0
    fresh.add(running, running.released())
    assert fresh.due_in(others_running=5) == 0.0


def test_the_event_loop_starts_a_whole_claim_and_reports_each_outcome(
    queue: durq.JobQueue,
) -> None:
    reported: list[tuple[RunningJob, Finished | None]] = []
    all_in = threading.Event()

    def done(running: RunningJob, finished: Finished | None) -> None:
        reported.append((running, finished))
        if len(reported) == 4:
            all_in.set()

    started = 0

    async def task(job: durq.Job) -> str:
        nonlocal started
        started += 1
        await asyncio.sleep(0.01)
        return job.id

    async def forever(job: durq.Job) -> None:
        await asyncio.sleep(3600)

    loop = EventLoop(done)
    try:
        claim = [running_job(queue, task) for _ in range(2)]
        cancelled_first = running_job(queue, forever)
        cancelled_first.drop("cancelled")  # before the loop starts it: it never runs
        cancelled_later = running_job(queue, forever)
        loop.submit([*claim, cancelled_first, cancelled_later])
        while cancelled_later.stop_task is None:  # started, and cancellable from here
            threading.Event().wait(0.01)
        cancelled_later.drop("cancelled")
        assert all_in.wait(30)
    finally:
        loop.stop()
    outcomes = {running.job.id: finished for running, finished in reported}
    for running in claim:
        finished = outcomes[running.job.id]
        assert finished is not None and finished.outcome is Outcome.SUCCEEDED
        assert finished.result == running.job.id
    assert outcomes[cancelled_first.job.id] is None
    assert outcomes[cancelled_later.job.id] is None
    assert started == 2


def test_an_async_task_that_raises_timeout_error_itself_fails_with_its_own_error(
    queue: durq.JobQueue,
) -> None:
    reported: list[Finished | None] = []
    done = threading.Event()

    def report(running: RunningJob, finished: Finished | None) -> None:
        reported.append(finished)
        done.set()

    async def upstream_timed_out(job: durq.Job) -> None:
        raise TimeoutError("the upstream server did not answer")

    loop = EventLoop(report)
    try:
        loop.submit([running_job(queue, upstream_timed_out)])  # its own timeout: 300 s
        assert done.wait(30)
    finally:
        loop.stop()
    [finished] = reported
    assert finished is not None and finished.outcome is Outcome.FAILED
    assert finished.error is not None
    assert "the upstream server did not answer" in finished.error
    assert "timed out after" not in finished.error
