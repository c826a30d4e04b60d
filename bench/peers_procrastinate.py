"""procrastinate on PostgreSQL (psycopg 3 connector).

"Run a job" = what its worker does per job: ``procrastinate_fetch_job`` (a ``FOR UPDATE
SKIP LOCKED`` claim, one transaction) then ``procrastinate_finish_job`` (a second), with the
task an ``async def`` so ``concurrency`` jobs overlap their round trips inside one process,
as procrastinate's docs advise. The drain is ``run_worker_async(wait=False)``, which stops
once the queue is caught up; the idle consumer is the same worker with ``wait=True`` and
its default LISTEN/NOTIFY wake-up. Finished jobs are kept (its default), like durq's. The
I/O-bound drain is the same worker with ``concurrency=N``, the task awaiting
``asyncio.sleep`` before it records the job.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from importlib.metadata import version

from procrastinate import App, PsycopgConnector

from peers_api import Adapter, Recorder

# Jobs each worker process runs at once. 1, 4 and 10 drained within noise of each other on
# this machine (2,000 jobs, twice each); 4 is kept. The variable is there to try others.
CONCURRENCY = int(os.environ.get("BENCH_PROCRASTINATE_CONCURRENCY", "4"))

RECORDER = Recorder()
SLEEP = 0.0  # the I/O-bound drain's wait per job


async def bench_job(n: int) -> None:
    if SLEEP:
        await asyncio.sleep(SLEEP)
    RECORDER.ran(n)


class ProcrastinateAdapter(Adapter):
    name = "procrastinate"
    backend = "postgresql"
    io_supported = True

    def __init__(self, target: str, synchronous: str) -> None:
        super().__init__(target, synchronous)
        self.app = App(connector=PsycopgConnector(conninfo=target))
        self.task = self.app.task(name="bench_job")(bench_job)
        self._opened = False

    def _open(self) -> None:
        if not self._opened:
            self.app.open()
            self._opened = True

    def version(self) -> str:
        return version("procrastinate")

    def settings(self) -> str:
        return f"worker concurrency={CONCURRENCY} per process, async task; idle: LISTEN/NOTIFY"

    def setup(self) -> None:
        self._open()
        self.app.schema_manager.apply_schema()

    def enqueue_each(self, numbers: Sequence[int]) -> None:
        self._open()
        for n in numbers:
            self.task.defer(n=n)

    def enqueue_batch(self, numbers: Sequence[int]) -> None:
        self._open()
        self.task.batch_defer(*({"n": n} for n in numbers))

    def _run_worker(
        self,
        recorder: Recorder,
        wait: bool,
        start: Callable[[], None],
        concurrency: int = CONCURRENCY,
    ) -> None:
        global RECORDER
        RECORDER = recorder

        async def run() -> None:
            async with self.app.open_async():
                await self.app.check_connection_async()  # the pool is connected
                start()  # blocks the loop until go: nothing else runs yet
                await self.app.run_worker_async(
                    concurrency=concurrency if not wait else 1,
                    wait=wait,
                    install_signal_handlers=False,
                )

        asyncio.run(run())

    def drain(self, recorder: Recorder, start: Callable[[], None]) -> None:
        self._run_worker(recorder, wait=False, start=start)

    def drain_io(
        self, recorder: Recorder, start: Callable[[], None], concurrency: int, sleep: float
    ) -> None:
        global SLEEP
        SLEEP = sleep
        self._run_worker(recorder, wait=False, start=start, concurrency=concurrency)

    def serve(self, recorder: Recorder) -> None:
        self._run_worker(recorder, wait=True, start=lambda: None)

    def close(self) -> None:
        if self._opened:
            self.app.close()


ADAPTER = ProcrastinateAdapter
