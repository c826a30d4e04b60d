"""litequeue's ``LiteQueue`` (messages are locked by ``pop`` and marked by ``done``).

"Run a job" = ``pop()`` (one ``BEGIN IMMEDIATE`` ``UPDATE … RETURNING`` of the oldest ready
message) and ``done(message_id)`` (a second commit). litequeue has no wait, so the idle
consumer polls ``pop()`` every 1 ms, as often as durq's idle worker. litequeue sets
``synchronous=NORMAL`` when it connects; the adapter sets the run's value after that.
Batch enqueue is ``put`` calls inside its ``transaction()`` context manager.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path

from litequeue import LiteQueue

from peers_api import Adapter, Recorder


class LiteQueueAdapter(Adapter):
    name = "litequeue"

    def __init__(self, target: str, synchronous: str) -> None:
        super().__init__(target, synchronous)
        # litequeue's default busy timeout (5 s) is too short for four processes that each
        # take the write lock twice per job.
        self.queue = LiteQueue(str(Path(target, "litequeue.db")), timeout=60)
        self.queue.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")

    def version(self) -> str:
        return version("litequeue")

    def settings(self) -> str:
        return f"WAL, synchronous={self.synchronous.upper()}; pop + done, idle: 1 ms poll"

    def enqueue_each(self, numbers: Sequence[int]) -> None:
        for n in numbers:
            self.queue.put(str(n))

    def enqueue_batch(self, numbers: Sequence[int]) -> None:
        with self.queue.transaction(mode="IMMEDIATE"):
            for n in numbers:
                self.queue.put(str(n))

    def drain(self, recorder: Recorder, start: Callable[[], None]) -> None:
        q = self.queue
        start()
        while (message := q.pop()) is not None:
            recorder.ran(int(message.data))
            q.done(message.message_id)

    def serve(self, recorder: Recorder) -> None:
        q = self.queue
        while True:
            message = q.pop()
            if message is None:
                time.sleep(0.001)
                continue
            recorder.ran(int(message.data))
            q.done(message.message_id)

    def close(self) -> None:
        self.queue.close()


ADAPTER = LiteQueueAdapter
