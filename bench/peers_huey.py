"""huey's ``SqliteHuey``.

"Run a job" = one pass of huey's own consumer ``Worker.loop``: ``huey.dequeue()`` (an
exclusive transaction that selects the task and DELETES it: at-most-once, no record kept)
then ``huey.execute(task)`` (revocation check, the call, and clearing the task's revoke key,
which is a second commit). The drain runs exactly that pair in a loop and stops at the first
empty dequeue, which skips only the consumer's idle sleep. The idle consumer is huey's
``Worker`` itself with ``huey_consumer -d 0.001`` (1 ms first poll; default backoff 1.15 up
to 10 s), so it polls as often as durq's idle worker does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path

from huey import SqliteHuey
from huey.consumer import Worker

from peers_api import Adapter, Recorder

RECORDER = Recorder()


def bench_job(n: int) -> None:
    RECORDER.ran(n)


class HueyAdapter(Adapter):
    name = "huey"
    batch_supported = False  # huey enqueues a group task by task: no batch insert

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

            def create_normal():
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

    def serve(self, recorder: Recorder) -> None:
        global RECORDER
        RECORDER = recorder
        worker = Worker(
            self.huey, threading.Event(), default_delay=0.001, max_delay=10.0, backoff=1.15
        )
        while True:
            worker.loop()


ADAPTER = HueyAdapter
