"""Workloads shared by the benchmark scripts. Each takes a durq database URL, so the same
timed loops run against every backend (``bench.py`` for SQLite, others for PostgreSQL).

Every function returns the seconds its timed part took; setup (connecting, filling the queue
to drain) is never timed. Drains run in real worker processes (``fork``), started and connected
before the clock starts, released together by a barrier.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from typing import Any

import durq

QUEUE = "default"
WORKER_QUEUES: Sequence[str] | None = None  # what `durq worker` does without --queue
BATCH = 1000


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float) -> Any:
    """Poll ``condition`` every ``every`` seconds until it is truthy, and return its value;
    end the benchmark with an error after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"error: timed out waiting for {what}")


def payload(n: int) -> dict[str, int]:
    """The job payload every workload uses: small, like most real job arguments."""
    return {"n": n}


def enqueue_each(url: str, n: int) -> float:
    """``n`` calls to ``enqueue``: one durable commit per job."""
    q = durq.connect(url)
    try:
        q.enqueue(payload(-1))  # the first call registers the queue; keep it out of the timing
        start = time.perf_counter()
        for i in range(n):
            q.enqueue(payload(i))
        return time.perf_counter() - start
    finally:
        q.close()


def enqueue_batches(url: str, n: int, batch: int = BATCH) -> float:
    """``n`` jobs through ``enqueue_many`` in batches of ``batch``: one commit per batch."""
    q = durq.connect(url)
    try:
        q.enqueue(payload(-1))
        start = time.perf_counter()
        for first in range(0, n, batch):
            q.enqueue_many([payload(i) for i in range(first, min(first + batch, n))])
        return time.perf_counter() - start
    finally:
        q.close()


def fill(url: str, n: int, batch: int = BATCH) -> None:
    """Untimed: ``n`` queued jobs for a drain to take."""
    q = durq.connect(url)
    try:
        for first in range(0, n, batch):
            q.enqueue_many([payload(i) for i in range(first, min(first + batch, n))])
    finally:
        q.close()


def _durq_drainer(url: str, worker_id: str, barrier: Any, results: Any) -> None:
    q = durq.connect(url)
    barrier.wait()
    done = 0
    job = q.claim(worker_id, WORKER_QUEUES)
    while job is not None:
        # The no-op handler: the job is finished as soon as it is claimed.
        _, job = q.complete_and_claim(job, None, worker_id=worker_id, queues=WORKER_QUEUES)
        done += 1
    end = time.perf_counter()
    q.close()
    results.put((done, end))


def run_drainers(
    target: Callable[..., None], args: tuple[Any, ...], processes: int
) -> tuple[float, int]:
    """Run ``target(*args, worker_id, barrier, results)`` in ``processes`` forked processes.

    Each target connects, waits at the barrier, drains, and puts ``(jobs done, end time)``.
    Returns the seconds from the barrier to the last process's end (``perf_counter`` reads
    the system-wide monotonic clock, so the processes' readings compare) and the jobs done
    by all of them. Raises if a process fails.
    """
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(*args, f"bench-{i}", barrier, results))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    start = time.perf_counter()
    outcomes = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"drain process exited {p.exitcode}")
    return max(end for _, end in outcomes) - start, sum(done for done, _ in outcomes)


def drain(url: str, processes: int, expected: int) -> float:
    """Drain the queue with ``processes`` workers (claim, then complete_and_claim in a loop:
    one commit per job; a no-op handler). Checks that exactly ``expected`` jobs were done."""
    seconds, done = run_drainers(_durq_drainer, (url,), processes)
    if done != expected:
        raise RuntimeError(f"drained {done} jobs, expected {expected}")
    return seconds
