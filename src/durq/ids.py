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
import uuid

_lock = threading.Lock()
_last = 0  # (unix ms << 12) | rand_a of the last id made in this process


def new_job_id() -> str:
    global _last
    with _lock:
        counter = max(time.time_ns() // 1_000_000 << 12, _last + 1)
        _last = counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (counter >> 12) << 80 | 0x7 << 76 | (counter & 0xFFF) << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)
