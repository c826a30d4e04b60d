"""Stop signals: SIGTERM or SIGINT asks for a warm stop, a second one for a cold stop.

The handler only counts the signal and wakes the worker (both safe to do from a signal
handler: no lock is taken, nothing is logged); the worker's control loop acts on it.
Handlers can only be installed from the main thread; an embedded worker installs none and
is stopped with ``Worker.stop()``.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_signals(on_signal: Callable[[int], None]) -> Iterator[None]:
    """Call ``on_signal(signum)`` on SIGTERM/SIGINT while the block runs; the previous
    handlers come back after it."""

    def handler(signum: int, frame: FrameType | None) -> None:
        on_signal(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def name_of(signum: int | None) -> str:
    return signal.Signals(signum).name if signum else "stop"
