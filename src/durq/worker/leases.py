"""Keeping the leases of every running job: one renewal statement for all of them, every third
of the lease, so a live worker never has a long job taken away from it."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from durq.errors import DurqError, LeaseLost
from durq.job import JobState
from durq.queue import JobQueue
from durq.worker.attempt import RunningJob

log = logging.getLogger("durq.worker")


class LeaseKeeper:
    def __init__(self, queue: JobQueue, lease: float) -> None:
        self.queue = queue
        self.lease = lease
        self.every = lease / 3
        self._next = time.monotonic() + self.every

    def due_in(self) -> float:
        return max(0.0, self._next - time.monotonic())

    def renew(self, running: Sequence[RunningJob]) -> list[tuple[RunningJob, str]]:
        """Renew every running job's lease; returns those whose lease is gone, with why.

        A job cancelled by an admin reads as gone too: its worker must stop it, and any
        outcome it reports later is refused by fencing. A ``BackendError`` propagates, and
        the renewal is due again at once: the worker tries again after its backoff.
        """
        if not running:
            self._next = time.monotonic() + self.every
            return []
        answers = self.queue.heartbeat_many([r.job for r in running], self.lease)
        self._next = time.monotonic() + self.every
        gone = []
        for each, answer in zip(running, answers, strict=True):
            if isinstance(answer, LeaseLost) and answer.state == JobState.CANCELLED:
                gone.append((each, "cancelled"))
            elif isinstance(answer, DurqError):
                gone.append((each, f"lease lost while running ({answer})"))
        return gone
