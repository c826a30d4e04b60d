"""durq itself, on SQLite or PostgreSQL, run from the project's own venv.

"Run a job" = what ``durq worker --burst`` does: ``durq.worker.Worker`` with its default
concurrency (``durq.worker.DEFAULT_CONCURRENCY`` jobs at once, plain functions on threads),
claiming jobs for its free slots and writing finished jobs' outcomes in batches together
with the next claims (``JobQueue.settle``: one commit for many jobs, attempt history kept).
The idle consumer is the same worker without ``burst``: it sleeps in
``JobQueue.wait_for_change`` (SQLite: inotify on the database's folder; PostgreSQL:
LISTEN/NOTIFY). Its per-job log lines are switched off, as the peers' are (none of them is
given a logging handler).

Settings from the environment (``bench/peers.py`` and ``bench/concurrency.py`` set them):
``BENCH_DURQ_CONCURRENCY`` (jobs at once per process), ``BENCH_DURQ_TASKS`` (``thread`` or
``async``: the I/O-bound drain's task as a plain function or an ``async def``) and
``BENCH_DURQ_LOOP=calls``, which drives durq through its bare calls instead of the worker
(``claim``, then ``complete_and_claim`` per job: one job and one commit at a time), to see
what the runtime adds.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import durq
from durq.worker import DEFAULT_CONCURRENCY, Worker
from peers_api import Adapter, Recorder

QUEUES = ["default"]
LOOP = os.environ.get("BENCH_DURQ_LOOP", "worker")
CONCURRENCY = int(os.environ.get("BENCH_DURQ_CONCURRENCY") or DEFAULT_CONCURRENCY)
TASKS = os.environ.get("BENCH_DURQ_TASKS", "thread")


class DurqAdapter(Adapter):
    name = "durq"
    io_supported = True

    def __init__(self, target: str, synchronous: str) -> None:
        super().__init__(target, synchronous)
        if target.startswith("postgres"):
            self.backend = "postgresql"
            self.url = target
        else:
            self.url = f"sqlite:///{Path(target, 'durq.db')}?synchronous={synchronous}"
        self._queue: durq.JobQueue | None = None
        quiet = logging.getLogger("durq")
        quiet.addHandler(logging.NullHandler())
        quiet.setLevel(logging.WARNING)

    @property
    def queue(self) -> durq.JobQueue:
        if self._queue is None:
            self._queue = durq.connect(self.url)
        return self._queue

    def version(self) -> str:
        if self.backend == "postgresql":
            importlib.import_module("durq.backends.postgres")  # being written: may be absent
        return durq.__version__

    def settings(self) -> str:
        if LOOP == "calls":
            loop = "bare calls: claim + complete_and_claim, one job at a time"
        else:
            loop = f"durq.worker.Worker, concurrency={CONCURRENCY} (threads), burst"
        if TASKS == "async":
            loop = "durq.worker.Worker, burst, the task an async def on its event loop"
        if self.backend == "sqlite":
            return f"WAL, synchronous={self.synchronous.upper()}; {loop}; idle: inotify"
        return f"{loop}; idle: LISTEN/NOTIFY"

    def _worker(self, handler: Callable[[durq.Job], Any], concurrency: int, burst: bool) -> Worker:
        return Worker(
            self.queue,
            handler,
            queues=QUEUES,
            concurrency=concurrency,
            burst=burst,
            install_signal_handlers=False,
        )

    def setup(self) -> None:
        self.queue  # noqa: B018 - connecting creates the schema

    def enqueue_each(self, numbers: Sequence[int]) -> None:
        q = self.queue
        for n in numbers:
            q.enqueue({"n": n})

    def enqueue_batch(self, numbers: Sequence[int]) -> None:
        self.queue.enqueue_many([{"n": n} for n in numbers])

    def drain(self, recorder: Recorder, start: Callable[[], None]) -> None:
        q = self.queue
        if LOOP == "calls":
            start()
            worker_id = f"bench-{os.getpid()}"
            job = q.claim(worker_id, QUEUES)
            while job is not None:
                recorder.ran(job.payload["n"])
                _, job = q.complete_and_claim(job, None, worker_id=worker_id, queues=QUEUES)
            return
        worker = self._worker(lambda job: recorder.ran(job.payload["n"]), CONCURRENCY, True)
        start()
        worker.run()

    def drain_io(
        self, recorder: Recorder, start: Callable[[], None], concurrency: int, sleep: float
    ) -> None:
        handler: Callable[[durq.Job], Any]
        if TASKS == "async":

            async def wait_then_record(job: durq.Job) -> None:
                await asyncio.sleep(sleep)
                recorder.ran(job.payload["n"])

            handler = wait_then_record
        else:

            def sleep_then_record(job: durq.Job) -> None:
                time.sleep(sleep)
                recorder.ran(job.payload["n"])

            handler = sleep_then_record
        worker = self._worker(handler, concurrency, True)
        start()
        worker.run()

    def serve(self, recorder: Recorder) -> None:
        self._worker(lambda job: recorder.ran(job.payload["n"]), CONCURRENCY, False).run()

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()


ADAPTER = DurqAdapter
