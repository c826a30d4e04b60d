"""Attempt histories numbered straight through, with resubmits and releases, from real
queues of every backend."""

from __future__ import annotations

import durq
from durq.history import numbered


def claim(queue: durq.JobQueue) -> durq.Job:
    job = queue.claim("w1")
    assert job is not None
    return job


def test_a_resubmitted_job_numbers_its_attempts_across_the_resubmit(queue: durq.JobQueue) -> None:
    job = queue.enqueue("x", max_attempts=3)
    queue.release(claim(queue))  # handed back: does not count
    queue.fail(claim(queue), "for good", retry=False)  # unprocessable
    queue.resubmit(job.id)
    queue.release(claim(queue))  # handed back: does not count
    queue.complete(claim(queue), "done")

    entries = numbered(queue.attempts(job.id))
    assert [(e.number, e.attempt.attempt, e.resubmitted) for e in entries] == [
        (1, 1, False),
        (2, 1, False),  # the same count after a release is no resubmit
        (3, 1, True),
        (4, 1, False),
    ]


def test_a_resubmit_right_after_the_first_attempt_still_shows(queue: durq.JobQueue) -> None:
    job = queue.enqueue("x")
    queue.complete(claim(queue), "once")
    queue.resubmit(job.id)
    queue.complete(claim(queue), "twice")
    entries = numbered(queue.attempts(job.id))
    assert [(e.number, e.resubmitted) for e in entries] == [(1, False), (2, True)]
