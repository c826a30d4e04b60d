"""Checks on what callers hand in, shared by every backend so they all refuse the same things."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable

from durq.errors import InvalidJob
from durq.job import JSON

QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024


def queue_name(name: object) -> str:
    if not isinstance(name, str) or not QUEUE_NAME.fullmatch(name):
        raise InvalidJob(f"bad queue name {name!r}: use 1 to 64 of A-Z a-z 0-9 _ . -")
    return name


def queue_names(names: Iterable[str] | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise InvalidJob("queues must be a list of queue names, not a string")
    checked = tuple(dict.fromkeys(queue_name(n) for n in names))
    if not checked:
        raise InvalidJob("queues must name at least one queue (or be None for all)")
    return checked


def encode_json(value: JSON, what: str, limit: int) -> str:
    """``value`` as compact JSON text; refuses NaN/Infinity, non-JSON types and oversize."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"{what} is not JSON: {exc}") from None
    size = len(text.encode())
    if size > limit:
        raise InvalidJob(f"{what} is {size} bytes encoded; the limit is {limit}")
    return text


def whole_number(value: object, what: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidJob(f"{what} must be a whole number, not {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidJob(f"{what} must be at least {minimum}, not {value}")
    return value


def seconds(value: object, what: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidJob(f"{what} must be a finite number of seconds, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise InvalidJob(f"{what} must be {bound} seconds, not {value}")
    return float(value)


def dedupe_key(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 255:
        raise InvalidJob(f"dedupe_key must be a string of 1 to 255 characters, not {value!r}")
    return value
