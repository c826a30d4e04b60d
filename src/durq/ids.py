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
# The random ends of lone ids (``_random_tails``), made 256 at a time: a system call and the
# formatting once per 256 enqueues, not once each. Emptied in a forked child, which must not
# reuse its parent's.
_TAILS_AHEAD = 256
_tails: list[str] = []
_tail_at = 0


def new_job_id() -> str:
    """One id (an enqueue's): no loop, usually the last id's clock digits, and a random end
    made ahead (half what formatting each id in full costs)."""
    global _last, _tails, _tail_at
    with _lock:
        counter = time.time_ns() // 1_000_000 << 12
        if counter <= _last:  # not max(): a builtin without a fast call costs a tenth of this
            counter = _last + 1
        _last = counter
        if _tail_at == len(_tails):
            _tails, _tail_at = _random_tails(_TAILS_AHEAD), 0
        tail = _tails[_tail_at]
        _tail_at += 1
    return f"{_clock(counter >> 12)}{_RAND_A[counter & 0xFFF]}{tail}"


def new_job_ids(n: int) -> list[str]:
    """``n`` ids in creation order, with one lock and one read of randomness for them all
    (enqueue_many makes a thousand at a time)."""
    global _last
    if n == 1:
        return [new_job_id()]
    with _lock:
        first = max(time.time_ns() // 1_000_000 << 12, _last + 1)
        _last = first + n - 1
    ids = []
    millisecond, start = -1, ""
    for i, tail in enumerate(_random_tails(n)):
        counter = first + i
        if counter >> 12 != millisecond:  # once per 4,096 ids at most
            millisecond = counter >> 12
            start = _clock(millisecond)
        ids.append(f"{start}{_RAND_A[counter & 0xFFF]}{tail}")
    return ids


def _random_tails(n: int) -> list[str]:
    """The last 18 characters of ``n`` ids, from one read of the system's randomness: "-",
    then rand_b's 62 random bits as 16 hex digits with a "-" after the fourth; the first digit
    carries the variant (binary 10) in its top two bits."""
    noise = os.urandom(8 * n).hex()
    return [
        f"-{_VARIANT[noise[i]]}{noise[i + 1 : i + 4]}-{noise[i + 4 : i + 16]}"
        for i in range(0, 16 * n, 16)
    ]


_RAND_A = [f"{n:03x}" for n in range(4096)]  # the counter's low 12 bits as the id shows them


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
    global _lock, _tails, _tail_at
    _lock = threading.Lock()
    _tails, _tail_at = [], 0


os.register_at_fork(after_in_child=_reset_after_fork)
