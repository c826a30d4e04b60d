"""Job ids: UUIDv7 strings, ordered by creation and monotonic within a process.

Python 3.11 has no ``uuid.uuid7``. The 48-bit millisecond clock and the 12-bit ``rand_a``
field are used together as one counter (RFC 9562, method 3): within a millisecond, or when
the clock steps back, the counter moves on by one, so ids from one process never go
backwards. The 62 random bits keep ids from different processes apart.
"""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last = 0  # (unix ms << 12) | rand_a of the last id made in this process


def new_job_id() -> str:
    return new_job_ids(1)[0]


def new_job_ids(n: int) -> list[str]:
    """``n`` ids in creation order, with one lock and one read of randomness for them all
    (enqueue_many makes a thousand at a time)."""
    global _last
    with _lock:
        first = max(time.time_ns() // 1_000_000 << 12, _last + 1)
        _last = first + n - 1
    noise = os.urandom(8 * n)
    ids = []
    for i in range(n):
        counter = first + i
        rand_b = int.from_bytes(noise[8 * i : 8 * i + 8], "big") & ((1 << 62) - 1)
        value = (counter >> 12) << 80 | 0x7 << 76 | (counter & 0xFFF) << 64 | 0b10 << 62 | rand_b
        # str(uuid.UUID(int=value)), spelled out: a third of the cost.
        h = f"{value:032x}"
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)
