"""persist-queue's ``SQLiteAckQueue`` (acknowledged delivery: at-least-once by design).

"Run a job" = ``get(block=False, raw=True)`` (a SELECT of the first unacked row, then an
UPDATE to "unack" in its own commit) and ``ack(item)`` (a second commit). Its blocking
``get`` waits on an in-process event, which another process's ``put`` never sets (it then
wakes every 10 s), so across processes the natural fast loop polls ``get(block=False)``;
the idle consumer polls every 1 ms, as often as durq's idle worker. The SELECT and the
UPDATE are not one transaction, so two processes can take the same row: that shows up in
the duplicate count, not hidden by the harness.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from importlib.metadata import version

from persistqueue import SQLiteAckQueue
from persistqueue.exceptions import Empty

from peers_api import Adapter, Recorder


class PersistQueueAdapter(Adapter):
    name = "persist-queue"
    batch_supported = False  # SQLiteAckQueue forces auto_commit: one commit per put

    def __init__(self, target: str, synchronous: str) -> None:
        super().__init__(target, synchronous)
        # The default auto_resume puts every unacked row back to ready on open; harmless
        # here because all consumers open the queue before any of them takes a job.
        self.queue = SQLiteAckQueue(target)
        self.queue._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")

    def version(self) -> str:
        return version("persist-queue")

    def settings(self) -> str:
        return (
            f"WAL, synchronous={self.synchronous.upper()}; get(block=False) + ack, idle: 1 ms poll"
        )

    def enqueue_each(self, numbers: Sequence[int]) -> None:
        for n in numbers:
            self.queue.put(n)

    def fill(self, numbers: Sequence[int]) -> None:
        # Not timed: the same puts with commits made cheap (nothing synced).
        self.queue._conn.execute("PRAGMA synchronous=OFF")
        self.enqueue_each(numbers)
        self.queue._conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")

    def drain(self, recorder: Recorder, start: Callable[[], None]) -> None:
        q = self.queue
        start()
        while True:
            try:
                item = q.get(block=False, raw=True)
            except Empty:
                return
            recorder.ran(item["data"])
            q.ack(item)

    def serve(self, recorder: Recorder) -> None:
        q = self.queue
        while True:
            try:
                item = q.get(block=False, raw=True)
            except Empty:
                time.sleep(0.001)
                continue
            recorder.ran(item["data"])
            q.ack(item)

    def close(self) -> None:
        self.queue.close()


ADAPTER = PersistQueueAdapter
