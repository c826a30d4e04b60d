"""Jobs in every state, made through the public API, for the dashboard tests to show."""

from __future__ import annotations

from dataclasses import dataclass

import durq

XSS = "<script>alert(1)</script>"


@dataclass
class Scene:
    queued: durq.Job
    succeeded: durq.Job
    unprocessable: durq.Job
    cancelled: durq.Job
    xss: durq.Job


def make_unprocessable(queue: durq.JobQueue, payload: object, name: str = "mail") -> durq.Job:
    job = queue.enqueue(payload, queue=name, max_attempts=1, priority=100)
    claimed = queue.claim("worker-a", [name])
    assert claimed is not None and claimed.id == job.id
    error = f"Traceback (most recent call last):\nValueError: bad input {XSS}"
    return queue.fail(claimed, error, retry=False)


def make_succeeded(queue: durq.JobQueue, payload: object, name: str = "default") -> durq.Job:
    job = queue.enqueue(payload, queue=name, priority=100)
    claimed = queue.claim("worker-a", [name])
    assert claimed is not None and claimed.id == job.id
    return queue.complete(claimed, {"echo": payload, "html": "<i>result</i>"})


def make_recovered(
    queue: durq.JobQueue, payload: object, name: str = "default"
) -> tuple[durq.Job, durq.Job]:
    """A job that failed once and succeeded when retried: as it waited for its retry, and as
    it ended (``last_error`` still holds the failure)."""
    queue.enqueue(payload, queue=name, retry=durq.RetryPolicy(base=0))
    first = queue.claim("worker-a", [name])
    assert first is not None
    retrying = queue.fail(first, "Traceback (most recent call last):\nOSError: ledger busy")
    second = queue.claim("worker-a", [name])
    assert second is not None and second.id == first.id
    return retrying, queue.complete(second, {"applied": True})


def make_scene(queue: durq.JobQueue) -> Scene:
    succeeded = make_succeeded(queue, {"n": 1})
    unprocessable = make_unprocessable(queue, {"to": "a@example.org"})
    cancelled = queue.cancel(queue.enqueue({"n": 2}).id)
    xss = queue.enqueue({"x": XSS})
    queued = queue.enqueue({"n": 3})
    return Scene(queued, succeeded, unprocessable, cancelled, xss)
