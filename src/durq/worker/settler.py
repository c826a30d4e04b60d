"""Writing outcomes in batches, together with the next claims: one durable commit for many jobs.

Outcomes that arrive close together wait for each other, at most ``window`` seconds or until
``max_batch`` of them are waiting, and are then written by one ``JobQueue.settle`` call that
also claims jobs for the slots they free. When nothing else is running no outcome can join
the batch, so it is written at once: a worker running one job at a time pays no wait. Nor
does a batch wait out its window once outcomes stop coming: after a fifth of the window with
no new one, the rest of the running jobs are most likely far from done (jobs that one claim
started and that take about as long end close together; the next group is a job's length
away), and waiting longer would only leave the freed slots idle.

The trade: an outcome is in this worker's memory, not on disk, for up to ``window`` seconds.
A crash in that time loses it, and the job runs again once its lease expires (at-least-once
holds; nothing is lost). ``window=0`` writes each outcome as soon as it arrives.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from durq.errors import DurqError
from durq.job import Finished, Job
from durq.queue import JobQueue
from durq.worker.attempt import RunningJob

DEFAULT_WINDOW = 0.005  # seconds an outcome may wait for others
DEFAULT_MAX_BATCH = 100
QUIET_SHARE = 0.2  # a batch with no new outcome for this share of the window is written


class Settler:
    def __init__(
        self,
        queue: JobQueue,
        worker_id: str,
        queues: Sequence[str] | None,
        lease: float,
        *,
        window: float = DEFAULT_WINDOW,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.queues = queues
        self.lease = lease
        self.window = window
        self.max_batch = max_batch
        self.pending: list[tuple[RunningJob, Finished]] = []
        self._first_at = 0.0
        self._last_at = 0.0

    def add(self, running: RunningJob, finished: Finished) -> None:
        now = time.monotonic()
        if not self.pending:
            self._first_at = now
        self._last_at = now
        self.pending.append((running, finished))

    def due_in(self, others_running: int) -> float | None:
        """Seconds until the pending outcomes must be written (0: now); None: none pending."""
        if not self.pending:
            return None
        if others_running == 0 or len(self.pending) >= self.max_batch:
            return 0.0
        due = min(self._first_at + self.window, self._last_at + self.window * QUIET_SHARE)
        return max(0.0, due - time.monotonic())

    def flush(
        self, claim: int, claim_id: str | None = None
    ) -> tuple[list[tuple[RunningJob, Finished, Job | DurqError]], list[Job]]:
        """Write the pending outcomes and claim up to ``claim`` jobs, in one transaction.

        Returns each pending outcome with what the queue answered (the job as written, or the
        ``LeaseLost`` that refused it), and the claimed jobs. On a ``DurqError`` nothing was
        written and the outcomes stay pending.
        """
        batch = self.pending
        answers, claimed = self.queue.settle(
            [finished for _, finished in batch],
            worker_id=self.worker_id,
            queues=self.queues,
            lease=self.lease,
            claim=claim,
            claim_id=claim_id,
        )
        self.pending = []
        return [(r, f, a) for (r, f), a in zip(batch, answers, strict=True)], claimed
