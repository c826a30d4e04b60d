"""Retry backoff: exponential with jitter, so failing jobs spread out instead of stampeding."""

from __future__ import annotations

import dataclasses
import random


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 1.0  # seconds before the first retry
    cap: float = 3600.0  # no retry waits longer than this
    jitter: float = 0.25  # each delay moves by up to ±25 %

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        exponent = min(max(attempt - 1, 0), 64)  # 2**64 s is past any cap; avoids overflow
        raw = min(self.base * 2.0**exponent, self.cap)
        return min(raw * random.uniform(1 - self.jitter, 1 + self.jitter), self.cap)
