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
# Random hex digits read ahead for lone ids, 16 an id: one read of the system's randomness
# serves 256 enqueues instead of a system call each. Emptied in a forked child, which must
# not reuse its parent's.
_NOISE_AHEAD = 4096
_noise = ""
_noise_at = 0


def new_job_id() -> str:
    """One id (an enqueue's): no loop, and usually the last id's clock digits."""
    global _last, _noise, _noise_at
    with _lock:
        counter = _last = max(time.time_ns() // 1_000_000 << 12, _last + 1)
        if _noise_at == len(_noise):
            _noise, _noise_at = os.urandom(_NOISE_AHEAD // 2).hex(), 0
        rand_b = _noise[_noise_at : _noise_at + 16]
        _noise_at += 16
    return _format(counter, _clock(counter >> 12), rand_b)


def new_job_ids(n: int) -> list[str]:
    """``n`` ids in creation order, with one lock and one read of randomness for them all
    (enqueue_many makes a thousand at a time)."""
    global _last
    if n == 1:
        return [new_job_id()]
    with _lock:
        first = max(time.time_ns() // 1_000_000 << 12, _last + 1)
        _last = first + n - 1
    # rand_b's 62 random bits as hex: the first digit carries the variant (binary 10) in its
    # top two bits and two random bits below them, the other 15 digits are random.
    noise = os.urandom(8 * n).hex()
    ids = []
    millisecond, start = -1, ""
    for i in range(n):
        counter = first + i
        if counter >> 12 != millisecond:  # once per 4,096 ids at most
            millisecond = counter >> 12
            start = _clock(millisecond)
        ids.append(_format(counter, start, noise[16 * i : 16 * i + 16]))
    return ids


def _format(counter: int, start: str, rand_b: str) -> str:
    return f"{start}{counter & 0xFFF:03x}-{_VARIANT[rand_b[0]]}{rand_b[1:4]}-{rand_b[4:]}"


_clock_digits = (-1, "")  # the last millisecond formatted, and its digits; one tuple, so
# threads that read it while another replaces it see a matching pair


def _clock(millisecond: int) -> str:
    """The id's first 15 characters: the 48-bit millisecond clock and the version digit."""
    global _clock_digits
    cached, digits = _clock_digits
    if cached != millisecond:
        clock = f"{millisecond:012x}"
        digits = f"{clock[:8]}-{clock[8:]}-7"
        _clock_digits = (millisecond, digits)
    return digits


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _reset_after_fork() -> None:
    global _lock, _noise, _noise_at
    _lock = threading.Lock()
    _noise, _noise_at = "", 0


os.register_at_fork(after_in_child=_reset_after_fork)
