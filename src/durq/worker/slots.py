"""Where tasks run: plain functions on a pool of threads, ``async def`` tasks on one event loop.

Both report each finished attempt through the ``done`` callback they are given, from their
own thread; the runtime's control loop takes it from there. Threads are daemons and started
as they are needed: a thread task that overruns its timeout cannot be stopped from outside,
so the worker leaves it behind (and a process exit never waits for it).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial

from durq.job import Finished
from durq.worker.attempt import RunningJob

Done = Callable[[RunningJob, Finished | None], None]  # None: cancelled, no outcome


class ThreadSlots:
    """Runs plain calls on up to ``size`` threads, each reused from job to job."""

    def __init__(self, size: int, done: Done) -> None:
        self._size = size
        self._done = done
        self._work: queue.SimpleQueue[RunningJob | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._abandoned = 0  # threads stuck in a task past its timeout

    def submit(self, running: RunningJob) -> None:
        with self._lock:
            if self._idle == 0 and len(self._threads) - self._abandoned < self._size:
                thread = threading.Thread(
                    target=self._serve, name=f"durq-task-{len(self._threads) + 1}", daemon=True
                )
                self._threads.append(thread)
                self._idle += 1
                thread.start()
            self._idle -= 1
        self._work.put(running)

    def abandon(self, running: RunningJob) -> None:
        """Leave ``running``'s thread to its task: a fresh thread takes its place."""
        with self._lock:
            self._abandoned += 1
        running.abandoned = True
        running.cancel.set()  # a task that checks durq.cancel_requested() may still stop

    def _serve(self) -> None:
        while True:
            running = self._work.get()
            if running is None:
                return
            finished = running.run()
            if running.abandoned:
                return  # its place was taken; its outcome was written as timed out already
            with self._lock:
                self._idle += 1
            self._done(running, finished)

    def stop(self) -> bool:
        """Let idle threads end; whether one is still busy in a task (left behind)."""
        for _ in self._threads:
            self._work.put(None)
        deadline = time.monotonic() + 1.0  # idle threads end at once; busy ones do not
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return any(thread.is_alive() for thread in self._threads)


class EventLoop:
    """Runs ``async def`` calls as tasks on one event loop, in a thread of its own."""

    def __init__(self, done: Done) -> None:
        self._done = done
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def submit(self, runnings: Sequence[RunningJob]) -> None:
        """Start ``runnings`` (a claim's async jobs) as tasks: one wake-up of the loop for
        them all, rather than one ``run_coroutine_threadsafe`` hand-off each."""
        loop = self._running_loop()
        loop.call_soon_threadsafe(self._start, loop, runnings)

    def _start(self, loop: asyncio.AbstractEventLoop, runnings: Sequence[RunningJob]) -> None:
        # On the loop's thread.
        for running in runnings:
            if running.dropped is not None:  # cancelled (or released) before it started
                self._done(running, None)
                continue
            task = loop.create_task(running.run_async())
            running.stop_task = partial(loop.call_soon_threadsafe, task.cancel)
            if running.dropped is not None:
                # drop() came between the check above and stop_task: it set dropped before
                # it looked for stop_task, so it found none; cancel here instead.
                task.cancel()
            task.add_done_callback(partial(self._report, running))

    def _report(self, running: RunningJob, task: asyncio.Task[Finished]) -> None:
        try:
            outcome: Finished | None = task.result()
        except asyncio.CancelledError:
            outcome = None
        except BaseException as error:  # run_async reports its call's errors itself
            outcome = running.failed(f"the worker's event loop failed: {error!r}")
        self._done(running, outcome)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            self._thread = threading.Thread(target=serve, name="durq-event-loop", daemon=True)
            self._thread.start()
            started.wait()
            self._loop = loop
        return self._loop

    def stop(self) -> None:
        """Cancel what still runs (its outcome is not wanted any more), stop the loop and
        close it."""
        if self._loop is None or self._thread is None:
            return
        loop = self._loop

        async def wind_down() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.shutdown_asyncgens()
            loop.call_soon(loop.stop)

        asyncio.run_coroutine_threadsafe(wind_down(), loop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            loop.close()
        self._loop = None
