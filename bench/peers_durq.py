"""durq itself, on SQLite or PostgreSQL, run from the project's own venv.

"Run a job" = the worker's loop: ``claim`` once, then ``complete_and_claim`` for every job
after, so a drain costs one commit per job, with the attempt history kept. Idle, the loop
calls ``wait_for_change`` between empty claims (SQLite: ``data_version`` polling;
PostgreSQL: LISTEN/NOTIFY), as ``durq worker`` does.

``BENCH_DURQ_LOOP=worker`` runs ``durq.worker.Worker`` itself instead (``durq worker
--burst``: the handler in a thread per job, so it can renew the lease and enforce the
timeout), to show what that supervision costs. Its per-job log lines are switched off, as
the peers' are (none of them is given a logging handler).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import durq
from peers_api import Adapter, Recorder

QUEUES = ["default"]
LOOP = os.environ.get("BENCH_DURQ_LOOP", "calls")


class DurqAdapter(Adapter):
    name = "durq"

    def __init__(self, target: str, synchronous: str) -> None:
        super().__init__(target, synchronous)
        if target.startswith("postgres"):
            self.backend = "postgresql"
            self.url = target
        else:
            self.url = f"sqlite:///{Path(target, 'durq.db')}?synchronous={synchronous}"
        self._queue: durq.JobQueue | None = None

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
        loop = "durq.worker.Worker (burst)" if LOOP == "worker" else "claim + complete_and_claim"
        if self.backend == "sqlite":
            return f"WAL, synchronous={self.synchronous.upper()}; {loop}"
        return loop

    def _run_worker(self, recorder: Recorder, burst: bool) -> None:
        from durq.worker import Worker

        durq_log = logging.getLogger("durq")
        durq_log.addHandler(logging.NullHandler())
        durq_log.setLevel(logging.WARNING)
        worker = Worker(
            self.queue, lambda job: recorder.ran(job.payload["n"]), queues=QUEUES, burst=burst
        )
        worker.run()

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
        start()
        if LOOP == "worker":
            self._run_worker(recorder, burst=True)
            return
        worker_id = f"bench-{os.getpid()}"
        job = q.claim(worker_id, QUEUES)
        while job is not None:
            recorder.ran(job.payload["n"])
            _, job = q.complete_and_claim(job, None, worker_id=worker_id, queues=QUEUES)

    def serve(self, recorder: Recorder) -> None:
        if LOOP == "worker":
            self._run_worker(recorder, burst=False)
            return
        q = self.queue
        worker_id = f"bench-{os.getpid()}"
        job = None
        while True:
            if job is None:
                job = q.claim(worker_id, QUEUES)
                if job is None:
                    q.wait_for_change(1.0)
                continue
            recorder.ran(job.payload["n"])
            _, job = q.complete_and_claim(job, None, worker_id=worker_id, queues=QUEUES)

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()


ADAPTER = DurqAdapter
