"""Riding out a database outage: the worker's own calls are tried again with backoff and
jitter, and the outage is logged once when it starts and once when it ends, not per try.

A restart, ``pg_terminate_backend``, a failover, a full disk or a lock held too long all look
alike from here: a ``BackendError`` from a call that may work later. Meanwhile the worker
keeps running the jobs it holds and keeps their outcomes until they can be written.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from durq.errors import DurqError

log = logging.getLogger("durq.worker")

FIRST_RETRY = 0.05  # seconds before the first retry; doubled each try
LONGEST_RETRY = 5.0  # the backoff's cap: an outage of any length is noticed within this


class Outage:
    def __init__(self, who: str) -> None:
        self.who = who  # how log lines name the process: "worker w1", "producer"
        self._lock = threading.Lock()  # the control loop and the waker both report
        self._since: float | None = None
        self._tries = 0
        self._retry_at = 0.0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def wait_left(self) -> float:
        """Seconds until the next try may be made (0 outside an outage)."""
        return max(0.0, self._retry_at - time.monotonic())

    def failed(self, doing: str, error: DurqError) -> float:
        """Note a failed call; the seconds to wait before the next try."""
        with self._lock:
            now = time.monotonic()
            if self._since is None:
                self._since = now
                log.warning(
                    "%s: the database is unavailable (%s: %s); trying again with "
                    "backoff until it is back (running jobs go on, their outcomes wait)",
                    self.who,
                    doing,
                    error,
                )
            else:
                log.debug("%s: still unavailable (%s: %s)", self.who, doing, error)
            self._tries += 1
            backoff = min(LONGEST_RETRY, FIRST_RETRY * 2 ** min(self._tries - 1, 16))
            wait: float = backoff * random.uniform(0.5, 1.5)  # not in lockstep with others
            self._retry_at = now + wait
            return wait

    def recovered(self) -> None:
        """Note a call that worked: the outage, if any, is over."""
        with self._lock:
            if self._since is not None:
                log.warning(
                    "%s: the database is back after %.1fs (%d tries)",
                    self.who,
                    time.monotonic() - self._since,
                    self._tries,
                )
            self._since = None
            self._tries = 0
            self._retry_at = 0.0
