"""pgqueuer on PostgreSQL (asyncpg driver).

"Run a job" = what its ``QueueManager`` does: dequeue a batch of up to ``batch_size`` jobs in
one ``FOR UPDATE SKIP LOCKED`` statement, run each entrypoint as an asyncio task, and record
finished jobs through a buffer that deletes them from the queue table and logs them in
batches. So a commit covers up to ``batch_size`` jobs, not one (a crash can lose the
completion of a whole batch, which then runs again). The drain is ``run(mode=drain)``,
which stops once the queue is empty; the idle consumer is ``run()`` with its LISTEN/NOTIFY
wake-up. Defaults throughout (batch_size=10, "durable" tables).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any

import asyncpg
from pgqueuer import AsyncpgDriver, Queries, QueueManager
from pgqueuer.domain.types import QueueExecutionMode

from peers_api import Adapter, Recorder

ENTRYPOINT = "bench_job"
# Jobs per dequeue (and per completion flush); pgqueuer's default is 10. The variable is
# there to see how much of its speed is batching (see docs/benchmarks.md).
BATCH_SIZE = int(os.environ.get("BENCH_PGQUEUER_BATCH", "10"))


class PgQueuerAdapter(Adapter):
    name = "pgqueuer"
    backend = "postgresql"

    def __init__(self, target: str, synchronous: str) -> None:
        super().__init__(target, synchronous)
        self.loop = asyncio.new_event_loop()
        self._conn: Any = None
        self._queries: Queries | None = None

    def _run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    @property
    def queries(self) -> Queries:
        if self._queries is None:
            self._conn = self._run(asyncpg.connect(self.target))
            self._queries = Queries(AsyncpgDriver(self._conn))
        return self._queries

    def version(self) -> str:
        return version("pgqueuer")

    def settings(self) -> str:
        batch = "defaults (batch_size=10" if BATCH_SIZE == 10 else f"(batch_size={BATCH_SIZE}"
        return f"QueueManager {batch}, durable tables); idle: LISTEN/NOTIFY"

    def setup(self) -> None:
        self._run(self.queries.install())

    def enqueue_each(self, numbers: Sequence[int]) -> None:
        queries = self.queries

        async def each() -> None:
            for n in numbers:
                await queries.enqueue(ENTRYPOINT, str(n).encode())

        self._run(each())

    def enqueue_batch(self, numbers: Sequence[int]) -> None:
        count = len(numbers)
        payloads: list[bytes | None] = [str(n).encode() for n in numbers]
        self._run(self.queries.enqueue([ENTRYPOINT] * count, payloads, [0] * count))

    def _run_manager(
        self, recorder: Recorder, mode: QueueExecutionMode, start: Callable[[], None]
    ) -> None:
        manager = QueueManager(self.queries)

        @manager.entrypoint(ENTRYPOINT)  # type: ignore[untyped-decorator]
        async def bench_job(job: Any) -> None:
            recorder.ran(int(job.payload))

        start()
        self._run(manager.run(mode=mode, batch_size=BATCH_SIZE))

    def drain(self, recorder: Recorder, start: Callable[[], None]) -> None:
        self._run_manager(recorder, QueueExecutionMode.drain, start)

    def serve(self, recorder: Recorder) -> None:
        self._run_manager(recorder, QueueExecutionMode.continuous, lambda: None)

    def close(self) -> None:
        if self._conn is not None:
            self._run(self._conn.close())
        self.loop.close()


ADAPTER = PgQueuerAdapter
