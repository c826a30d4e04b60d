"""Scheduling an app's periodic tasks from inside its workers (see ``durq.app.periodic``).

Each worker stores the job of every periodic task's next slot ahead of time; the queue takes
each slot once, whichever worker asks first. After the slot it stored (or found taken), a
worker asks for the one after, so while any worker runs the next slot of every periodic task
is always stored before it comes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from durq.app.periodic import Periodic
from durq.app.tasks import payload_of
from durq.queue import JobQueue

log = logging.getLogger("durq.worker")


class Scheduler:
    def __init__(self, queue: JobQueue, periodic: Sequence[Periodic]) -> None:
        self.queue = queue
        self.periodic = list(periodic)
        self._scheduled: dict[str, datetime] = {}  # task name -> the latest slot handled
        self._next_tick = time.monotonic()

    def due_in(self) -> float | None:
        """Seconds until the next tick; None with nothing to schedule."""
        if not self.periodic:
            return None
        return max(0.0, self._next_tick - time.monotonic())

    def tick(self) -> None:
        """Store the next slot of every periodic task whose last one has come."""
        now = datetime.now(UTC)
        for each in self.periodic:  # a BackendError propagates: the worker tries again
            handled = self._scheduled.get(each.task.name)
            if handled is not None and handled > now:
                continue
            slot = each.next_slot(now)
            self._store(each, slot)
            self._scheduled[each.task.name] = slot
        soonest = min(self._scheduled.values())
        self._next_tick = time.monotonic() + max(0.0, (soonest - now).total_seconds())

    def _store(self, each: Periodic, slot: datetime) -> None:
        task = each.task
        options = task.options
        job = self.queue.enqueue_periodic(
            task.name,
            slot,
            payload_of((), {}),
            queue=options.queue,
            priority=options.priority,
            max_attempts=options.max_attempts,
            timeout=options.timeout,
            task=task.name,
            retry=options.retry,
        )
        if job is not None:
            log.info(
                "periodic task %s scheduled for %s: job %s", task.name, slot.isoformat(), job.id
            )
