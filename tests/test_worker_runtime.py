"""The worker runtime: many jobs at once in one process (threads and an event loop), timeouts,
cancelling a running job, embedding, and what batching can cost in a crash. In process where
the worker's own state is what is checked, real processes and signals where a crash is."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import durq
from durq import JobState, Outcome
from durq.worker import Worker
from worker_support import Workers, finish, wait_for


class Gauge:
    """How many tasks run at once, at most (no clock involved)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.threads: set[str] = set()

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.threads.add(threading.current_thread().name)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def embedded(queue: durq.JobQueue, runner: Any, **options: Any) -> Worker:
    return Worker(queue, runner, install_signal_handlers=False, **options)


@pytest.fixture
def app(queue: durq.JobQueue) -> Iterator[durq.App]:
    made = durq.App(name="runtime")
    made.use_queue(queue)
    yield made


def test_plain_tasks_run_concurrently_on_threads(queue: durq.JobQueue) -> None:
    gauge = Gauge()
    everyone_in = threading.Barrier(4, timeout=30)

    def handler(job: durq.Job) -> int:
        with gauge:
            if job.payload < 4:
                everyone_in.wait()  # the first four wait for each other: only if they overlap
        return int(job.payload)

    queue.enqueue_many(list(range(10)))
    assert embedded(queue, handler, concurrency=4, burst=True).run() == 0

    assert gauge.most == 4
    assert len(gauge.threads) == 4 and threading.current_thread().name not in gauge.threads
    assert {j.state for j in queue.list_jobs()} == {JobState.SUCCEEDED}


def test_async_tasks_share_one_event_loop_beside_thread_tasks(app: durq.App) -> None:
    gauge = Gauge()
    gate: dict[str, asyncio.Event] = {}

    @app.task
    async def fetch(n: int) -> int:
        gate.setdefault("open", asyncio.Event())
        with gauge:
            if gauge.most >= 30:
                gate["open"].set()
            await asyncio.wait_for(gate["open"].wait(), timeout=30)
        return n

    @app.task
    def compute(n: int) -> int:
        return n * n

    fetched = [fetch.enqueue(n) for n in range(30)]
    computed = [compute.enqueue(n) for n in range(5)]
    assert embedded(app.queue, app, concurrency=40, burst=True).run() == 0

    assert gauge.most == 30  # thirty coroutines waited at once
    assert gauge.threads == {"durq-event-loop"}
    assert [app.queue.get(j.id).result for j in fetched] == list(range(30))
    assert [app.queue.get(j.id).result for j in computed] == [n * n for n in range(5)]


def test_an_async_task_past_its_timeout_is_cancelled_and_the_worker_goes_on(
    app: durq.App,
) -> None:
    cancelled = threading.Event()

    @app.task(timeout=0.3, max_attempts=1)
    async def stuck() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cancelled.set()

    @app.task
    async def fine() -> str:
        return "fine"

    slow, quick = stuck.enqueue(), fine.enqueue()
    assert embedded(app.queue, app, concurrency=2, burst=True).run() == 0

    failed = app.queue.get(slow.id)
    assert (failed.state, failed.last_error) == (JobState.UNPROCESSABLE, "timed out after 0.3 s")
    assert cancelled.is_set()
    assert app.queue.get(quick.id).result == "fine"


def test_cancelling_a_running_job_stops_its_task(app: durq.App) -> None:
    saw_cancel = threading.Event()
    async_stopped = threading.Event()
    started = threading.Barrier(3, timeout=30)

    @app.task
    def polite() -> str:
        started.wait()
        while not durq.cancel_requested():
            time.sleep(0.01)
        saw_cancel.set()
        return "stopped early"  # too late to count: the job is cancelled

    @app.task
    async def waiting() -> None:
        await asyncio.to_thread(started.wait)
        try:
            await asyncio.sleep(60)
        finally:
            async_stopped.set()

    jobs = [polite.enqueue(), waiting.enqueue()]
    worker = embedded(app.queue, app, concurrency=2, lease=0.6)
    thread = threading.Thread(target=worker.run)
    thread.start()
    started.wait()
    for job in jobs:
        assert app.queue.cancel(job.id).state is JobState.CANCELLED
    # The worker learns of it by its next lease renewal, within a third of the lease.
    wait_for(saw_cancel.is_set, "the thread task to see cancel_requested()", timeout=10)
    wait_for(async_stopped.is_set, "the async task to be cancelled", timeout=10)
    worker.stop()
    thread.join(timeout=30)

    for job in jobs:
        after = app.queue.get(job.id)
        assert (after.state, after.result) == (JobState.CANCELLED, None)
        assert [a.outcome for a in app.queue.attempts(job.id)] == [Outcome.CANCELLED]


def test_a_cancelled_thread_task_that_goes_on_is_let_go(
    app: durq.App, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread cannot be interrupted: a task that ignores the cancel runs on. The worker
    says so once, calls no hook for it, and does not wait for it when it stops."""
    started, release = threading.Event(), threading.Event()
    hooked: list[str] = []
    app.on_success(lambda job, value: hooked.append("success"))
    app.on_failure(lambda job, error: hooked.append("failure"))

    @app.task
    def stubborn() -> str:
        started.set()
        release.wait(60)  # deaf to cancel_requested()
        return "too late"

    job = stubborn.enqueue()
    worker = embedded(app.queue, app, concurrency=2, lease=0.6, grace=0.5)
    thread = threading.Thread(target=worker.run)
    with caplog.at_level("INFO", logger="durq.worker"):
        thread.start()
        started.wait(30)
        app.queue.cancel(job.id)
        time.sleep(2)  # three lease renewals go by
        worker.stop()
        thread.join(timeout=30)
        stopped = not thread.is_alive()
        release.set()  # let the thread end, now the worker has gone
        time.sleep(0.2)

    assert stopped, "the worker waited for a cancelled task"
    cancelled_lines = [
        r for r in caplog.records if job.id in r.getMessage() and "cancelled" in r.getMessage()
    ]
    assert len(cancelled_lines) == 1, [r.getMessage() for r in cancelled_lines]
    assert cancelled_lines[0].levelname == "WARNING"
    assert hooked == []
    assert app.queue.get(job.id).state is JobState.CANCELLED


def test_an_embedded_worker_starts_and_stops_without_signal_handlers(
    queue: durq.JobQueue,
) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    done = threading.Event()
    worker = embedded(queue, lambda job: done.set(), idle_wait=0.1)
    thread = threading.Thread(target=worker.run)
    thread.start()
    queue.enqueue("while it runs")
    wait_for(done.is_set, "the embedded worker to run the job")
    assert {sig: signal.getsignal(sig) for sig in before} == before
    worker.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert queue.workers() == []


def test_an_embedded_worker_runs_under_asyncio(queue: durq.JobQueue) -> None:
    queue.enqueue_many([1, 2, 3])

    async def main() -> int:
        worker = embedded(queue, lambda job: job.payload, burst=True)
        return await asyncio.to_thread(worker.run)

    assert asyncio.run(main()) == 0
    assert {j.state for j in queue.list_jobs()} == {JobState.SUCCEEDED}


@pytest.mark.slow
def test_a_thread_task_past_its_timeout_lets_the_others_finish_then_exits_3(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    stuck = queue.enqueue({"seconds": 60}, timeout=1.0, max_attempts=2)
    healthy = queue.enqueue({"seconds": 2.0, "marker": str(marker)})
    proc = workers.start("--handler", "handlers:sleeps", "--concurrency", "2", "--lease", "5")

    code, err = finish(proc, timeout=60)

    assert code == 3, err
    failed = queue.get(stuck.id)
    assert (failed.state, failed.last_error) == (JobState.QUEUED, "timed out after 1 s")
    finished = queue.get(healthy.id)
    assert finished.state is JobState.SUCCEEDED  # it did not pay for the other's overrun
    assert finished.result["slept"] == 2.0
    assert queue.workers() == []


@pytest.mark.slow
def test_a_crash_before_the_batch_is_written_runs_the_job_again_never_loses_it(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    # A quick job finishes while a long one keeps the batch open (window: 60 s); the worker
    # is killed before it writes the quick job's outcome.
    marker = tmp_path / "long-started"
    quick = queue.enqueue({"n": 1}, priority=1)
    long = queue.enqueue({"seconds": 60, "marker": str(marker)})
    first = workers.start(
        "--handler",
        "handlers:sleeps_or_ok",
        "--concurrency",
        "2",
        "--lease",
        "1",
        "--batch-window",
        "60",
        "--worker-id",
        "first",
    )
    wait_for(marker.exists, "both jobs to start")
    time.sleep(0.5)  # the quick one is long done, its outcome waiting in the batch
    assert queue.get(quick.id).state is JobState.RUNNING  # not written: still in memory
    first.send_signal(signal.SIGKILL)
    assert finish(first)[0] == -signal.SIGKILL

    second = workers.start("--handler", "handlers:ok", "--lease", "1", "--worker-id", "second")
    wait_for(lambda: queue.get(quick.id).state is JobState.SUCCEEDED, "the quick job again")
    second.send_signal(signal.SIGTERM)
    finish(second)
    history = [(a.worker_id, a.outcome) for a in queue.attempts(quick.id)]
    assert history == [("first", Outcome.LOST), ("second", Outcome.SUCCEEDED)]
    assert queue.get(long.id).state in (JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED)
