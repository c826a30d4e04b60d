"""Shapes shared by every backend's answers, so ``stats()`` and friends read the same."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from durq.errors import InvalidJob
from durq.job import JobState, Outcome


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def state_value(value: JobState | str) -> str:
    try:
        return JobState(value).value
    except ValueError:
        names = ", ".join(s.value for s in JobState)
        raise InvalidJob(f"unknown state {value!r}: use one of {names}") from None


def stats_shape(
    paused: dict[str, bool],
    counts: Iterable[Sequence[Any]],
    oldest_run_at: dict[str, float],
    workers: int,
    now: float,
) -> dict[str, Any]:
    """The ``stats()`` dict from per-(queue, state) counts; shared shape for every backend."""
    queues: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        if name not in queues:
            queues[name] = {s.value: 0 for s in JobState}
            queues[name]["paused"] = paused.get(name, False)
            first = oldest_run_at.get(name)
            queues[name]["oldest_queued_age"] = None if first is None else max(0.0, now - first)
        return queues[name]

    for name in paused:
        entry(name)
    for name, state, n in counts:
        entry(name)[state] = n
    return {"queues": dict(sorted(queues.items())), "workers": workers}


def throughput_shape(
    rows: Iterable[Sequence[Any]], start: float, step: float, n: int
) -> list[tuple[datetime, dict[str, int]]]:
    steps: list[tuple[datetime, dict[str, int]]] = [
        (_dt(start + i * step), {o.value: 0 for o in Outcome}) for i in range(n)
    ]
    for index, outcome, count in rows:
        if 0 <= index < n and outcome in steps[index][1]:
            steps[index][1][outcome] = count
    return steps
