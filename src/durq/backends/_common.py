"""Shapes shared by every backend's answers, so ``stats()`` and friends read the same."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from durq.errors import InvalidJob, InvalidState, JobNotFound
from durq.job import FINISHED_STATES, JobState, Outcome


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def state_value(value: JobState | str) -> str:
    try:
        return JobState(value).value
    except ValueError:
        names = ", ".join(s.value for s in JobState)
        raise InvalidJob(f"unknown state {value!r}: use one of {names}") from None


def refusal(job_id: str, state: str | None, action: str) -> Exception:
    """Why ``action`` changed nothing: no such job (``state`` None), or not in that state."""
    if state is None:
        return JobNotFound(f"no job {job_id}")
    return InvalidState(f"cannot {action} job {job_id}: it is {state}")


def bulk_state(state: str, allowed: frozenset[JobState]) -> None:
    """A bulk action (resubmit or cancel every job of a filter) takes only ``allowed`` states."""
    if JobState(state) not in allowed:
        names = ", ".join(sorted(allowed))
        raise InvalidState(f"only jobs that are {names} can be chosen for this, not {state}")


def purge_states(older_than: object, states: Iterable[JobState | str] | None) -> list[str]:
    """``purge``'s arguments checked; the finished states to purge, each once, in order."""
    if not isinstance(older_than, timedelta) or older_than < timedelta(0):
        raise InvalidJob(f"older_than must be a timedelta of zero or more, not {older_than!r}")
    chosen = sorted(FINISHED_STATES) if states is None else [state_value(s) for s in states]
    for state in chosen:
        if JobState(state) not in FINISHED_STATES:
            raise InvalidState(f"purge deletes only finished jobs, not {state} ones")
    return list(dict.fromkeys(chosen))


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
