"""What every peer adapter provides, and the recorder its handler reports to.

Adapters run inside ``bench/peers_runner.py``, under the peers' venv (or durq's for durq), so
this module uses the standard library only. A job's payload is its number ``n`` in
``0..jobs-1``; the handler does nothing but tell the recorder that ``n`` ran, so a drain
measures the queue, not the work. The I/O-bound drain's handler first sleeps (``time.sleep``
on a thread, ``asyncio.sleep`` in an ``async def``), as a task waiting on the network would.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO


class Recorder:
    """Where a handler reports each job it ran.

    In a drain it appends ``n`` to this process's ids file (the coordinator then counts jobs
    run twice or never); in an idle-latency run it prints ``ran n t`` at once, with ``t`` on
    the monotonic clock, which every process on the machine shares. Handlers may call it from
    many threads at once (a worker's task threads): a lock keeps the lines whole. With
    ``until``, ``done`` is set once that many jobs ran (for consumers that never stop).
    """

    def __init__(
        self, ids_file: IO[str] | None = None, live: bool = False, until: int | None = None
    ) -> None:
        self.ids_file = ids_file
        self.live = live
        self.count = 0
        self.until = until
        self.done = threading.Event()
        self._lock = threading.Lock()

    def ran(self, n: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.count += 1
            if self.ids_file is not None:
                self.ids_file.write(f"{n}\n")
            if self.live:
                sys.stdout.write(f"ran {n} {now!r}\n")
                sys.stdout.flush()
            if self.until is not None and self.count >= self.until:
                self.done.set()


class Adapter:
    """One queue library driven the way its users would drive it.

    ``target`` is a directory (SQLite peers: the adapter picks its file names inside) or a
    PostgreSQL URL. ``synchronous`` is the SQLite ``synchronous`` pragma (``full`` or
    ``normal``), applied where the library lets a user set it.
    """

    name = "?"
    backend = "sqlite"
    batch_supported = True
    io_supported = False  # runs the I/O-bound drain (``drain_io``)

    def __init__(self, target: str, synchronous: str) -> None:
        self.target = target
        self.synchronous = synchronous

    def version(self) -> str:
        """The installed version; raises if the library cannot run here."""
        raise NotImplementedError

    def settings(self) -> str:
        """One line for the report: storage settings and the worker loop used."""
        raise NotImplementedError

    def setup(self) -> None:
        """Create the library's tables in a fresh target."""

    def enqueue_each(self, numbers: Sequence[int]) -> None:
        """Enqueue one job per number, each in its own commit (the common producer path)."""
        raise NotImplementedError

    def enqueue_batch(self, numbers: Sequence[int]) -> None:
        """Enqueue all ``numbers`` in one call / transaction, where the library offers it."""
        raise NotImplementedError

    def fill(self, numbers: Sequence[int]) -> None:
        """Load jobs before a drain, as fast as the library allows (not timed)."""
        for chunk in chunks(numbers, 1000):
            self.enqueue_batch(chunk)

    def drain(self, recorder: Recorder, start: Callable[[], None]) -> None:
        """Connect, call ``start()`` (it returns when the coordinator says go), then run jobs
        until none is left and return. One consumer process; connecting is not timed."""
        raise NotImplementedError

    def drain_io(
        self, recorder: Recorder, start: Callable[[], None], concurrency: int, sleep: float
    ) -> None:
        """As ``drain``, but each job first sleeps ``sleep`` seconds (waiting on I/O), and
        ``concurrency`` jobs run at once in this one process. A consumer that cannot stop by
        itself when the queue is empty returns once ``recorder.done`` is set."""
        raise NotImplementedError

    def serve(self, recorder: Recorder) -> None:
        """Wait for jobs and run them as an idle consumer would, until killed."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


def chunks(numbers: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(numbers), size):
        yield numbers[start : start + size]
