"""The demo producer behind ``durq produce``: submits a job at regular intervals.

It stops cleanly on SIGTERM or SIGINT: the signal handler only sets a flag (a handler that
did real work could run in the middle of an enqueue), and the loop notices it between jobs,
so an acknowledged job is never half-submitted and the process exits 0.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from durq.errors import BackendUnavailable
from durq.job import JSON
from durq.queue import JobQueue
from durq.worker.outage import Outage

log = logging.getLogger("durq.producer")

PayloadFactory = Callable[[random.Random], JSON]


class Producer:
    """Enqueue ``make_payload(rng)`` on ``queue_name`` every ``interval`` seconds.

    Stops after ``count`` jobs (``None``: never) or at ``request_stop()`` / SIGTERM / SIGINT.
    The schedule is fixed (job *k* is due at start + *k* * interval), so a slow enqueue does
    not make the rate drift.
    """

    def __init__(
        self,
        queue: JobQueue,
        make_payload: PayloadFactory,
        *,
        queue_name: str = "default",
        interval: float = 1.0,
        count: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if interval < 0:
            raise ValueError(f"interval must be zero or more seconds, not {interval}")
        if count is not None and count < 0:
            raise ValueError(f"count must be zero or more, not {count}")
        self.queue = queue
        self.make_payload = make_payload
        self.queue_name = queue_name
        self.interval = interval
        self.count = count
        self.rng = rng or random.Random()
        self.submitted = 0
        # An Event is the flag: setting it is all a signal handler does, and waiting on it
        # lets the pause between jobs end at once when it is set.
        self._stop = threading.Event()
        self._outage = Outage("producer")

    def request_stop(self) -> None:
        """Stop after the job being submitted now, if any. Safe from a signal handler."""
        self._stop.set()

    def run(self) -> int:
        """Submit jobs until done or stopped; returns the process exit status (0)."""
        log.info(
            "producer started: queue=%s interval=%gs count=%s",
            self.queue_name,
            self.interval,
            "unlimited" if self.count is None else self.count,
        )
        with self._signals_stop_me():
            due = time.monotonic()
            while not self._stop.is_set() and (self.count is None or self.submitted < self.count):
                payload = self.make_payload(self.rng)
                try:
                    job = self.queue.enqueue(payload, queue=self.queue_name)
                except BackendUnavailable as exc:
                    # The database is away for now: try the same job again, with backoff.
                    self._stop.wait(self._outage.failed("enqueueing", exc))
                    continue
                self._outage.recovered()
                self.submitted += 1
                log.info("enqueued job %s queue=%s payload=%s", job.id, job.queue, _dump(payload))
                if self.count is not None and self.submitted >= self.count:
                    break
                due += self.interval
                self._stop.wait(max(0.0, due - time.monotonic()))
        reason = "stop requested" if self._stop.is_set() else "count reached"
        log.info("producer stopped (%s) after %d jobs", reason, self.submitted)
        return 0

    @contextmanager
    def _signals_stop_me(self) -> Iterator[None]:
        """SIGTERM/SIGINT call ``request_stop`` while running; the old handlers come back after.

        Signal handlers can only be set from the main thread; elsewhere (a producer run in a
        thread) stopping is ``request_stop``'s job alone.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.request_stop()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _dump(payload: JSON) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
