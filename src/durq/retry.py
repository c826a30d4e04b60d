"""Retry backoff: exponential with jitter, so failing jobs spread out instead of stampeding."""

from __future__ import annotations

import dataclasses
import math
import random

from durq.errors import InvalidJob


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 1.0  # seconds before the first retry
    cap: float = 3600.0  # no retry waits longer than this
    jitter: float = 0.25  # each delay moves by up to ±25 %

    def __post_init__(self) -> None:
        for name in ("base", "cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidJob(f"RetryPolicy {name} must be a number of seconds, not {value!r}")
            if not math.isfinite(value) or value < 0:
                raise InvalidJob(f"RetryPolicy {name} must be zero or more seconds, not {value}")
        jitter = self.jitter
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter < 1:
            raise InvalidJob(
                f"RetryPolicy jitter must be a fraction from 0 to below 1, not {jitter!r}"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        exponent = min(max(attempt - 1, 0), 64)  # 2**64 s is past any cap; avoids overflow
        raw = min(self.base * 2.0**exponent, self.cap)
        return min(raw * random.uniform(1 - self.jitter, 1 + self.jitter), self.cap)
