"""Durations as people type them on a command line: ``30s``, ``15m``, ``2h``, ``7d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_WHOLE = re.compile(rf"(?:{_PART.pattern})+")

HINT = "use a number and a unit (s, m, h, d, w), like 30s, 15m, 2h, 7d or 1h30m"


def parse_duration(text: str) -> timedelta:
    """``text`` as a ``timedelta``; ``ValueError`` (whose message says what is accepted) if
    it is not one or more ``<number><unit>`` parts. Negative durations are refused."""
    cleaned = text.strip().lower()
    if not _WHOLE.fullmatch(cleaned):
        raise ValueError(f"{text!r} is not a duration: {HINT}")
    total = sum(float(number) * UNITS[unit] for number, unit in _PART.findall(cleaned))
    try:
        return timedelta(seconds=total)
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None
