"""huey's ``SqliteHuey``.

"Run a job" = one pass of huey's own consumer ``Worker.loop``: ``huey.dequeue()`` (an
exclusive transaction that selects the task and DELETES it: at-most-once, no record kept)
then ``huey.execute(task)`` (revocation check, the call, and clearing the task's revoke key,
which is a second commit). The drain runs exactly that pair in a loop and stops at the first
empty dequeue, which skips only the consumer's idle sleep. The idle consumer is huey's
``Worker`` itself with ``huey_consumer -d 0.001`` (1 ms first poll; default backoff 1.15 up
to 10 s), so it polls as often as durq's idle worker does.

The I/O-bound drain is huey's own ``Consumer`` as ``huey_consumer -k thread -w N`` starts it
(N worker threads, each running the loop above with its own connection; defaults otherwise:
0.1 s first poll when the queue is empty). It never stops by itself, so the clock stops
when the last job has run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from huey import SqliteHuey
from huey.consumer import Consumer, Worker

from peers_api import Adapter, Recorder

RECORDER = Recorder()
SLEEP = 0.0  # the I/O-bound drain's wait per job


def bench_job(n: int) -> None:
    if SLEEP:
        time.sleep(SLEEP)
    RECORDER.ran(n)


class HueyAdapter(Adapter):
    name = "huey"
    batch_supported = False  # huey enqueues a group task by task: no batch insert
    io_supported = True

    def __init__(self, target: str, synchronous: str) -> None:
        super().__init__(target, synchronous)
        self.huey = self._huey(fsync=synchronous == "full")
        self.task = self.huey.task(name="bench_job")(bench_job)

    def _huey(self, fsync: bool) -> SqliteHuey:
        # fsync=True is synchronous=FULL; False is huey's synchronous=OFF, so for NORMAL the
        # pragma is set on each connection after huey opens it.
        huey = SqliteHuey("bench", filename=str(Path(self.target, "huey.db")), fsync=fsync)
        if self.synchronous == "normal":
            create = huey.storage._create_connection

            def create_normal() -> Any:
                conn = create()
                conn.execute("pragma synchronous=NORMAL")
                return conn

            huey.storage._create_connection = create_normal
        return huey

    def version(self) -> str:
        return version("huey")

    def settings(self) -> str:
        return (
            f"WAL, synchronous={self.synchronous.upper()}; Worker loop (dequeue + execute), "
            "idle: huey_consumer -d 0.001"
        )

    def enqueue_each(self, numbers: Sequence[int]) -> None:
        for n in numbers:
            self.task(n)

    def fill(self, numbers: Sequence[int]) -> None:
        # Not timed: huey's own task rows, serialized by huey, inserted in one transaction
        # (its storage lock is not reentrant, so its enqueue cannot be wrapped).
        huey = self.huey
        rows = [(huey.name, huey.serialize_task(self.task.s(n)), 0.0) for n in numbers]
        with huey.storage.db(commit=True) as cursor:
            cursor.executemany("insert into task (queue, data, priority) values (?, ?, ?)", rows)

    def drain(self, recorder: Recorder, start: Callable[[], None]) -> None:
        global RECORDER
        RECORDER = recorder
        huey = self.huey
        huey.storage.conn  # noqa: B018 - connect before the clock starts
        start()
        while True:
            task = huey.dequeue()
            if task is None:
                return
            huey.execute(task)

    def drain_io(
        self, recorder: Recorder, start: Callable[[], None], concurrency: int, sleep: float
    ) -> None:
        global RECORDER, SLEEP
        RECORDER, SLEEP = recorder, sleep
        consumer = Consumer(self.huey, workers=concurrency, worker_type="thread")
        start()
        consumer.start()  # the worker threads (and the scheduler): what huey_consumer runs
        recorder.done.wait()
        consumer.stop()  # sets the stop flag; its threads are daemons, left to end

    def serve(self, recorder: Recorder) -> None:
        global RECORDER
        RECORDER = recorder
        worker = Worker(
            self.huey, threading.Event(), default_delay=0.001, max_delay=10.0, backoff=1.15
        )
        while True:
            worker.loop()


ADAPTER = HueyAdapter
