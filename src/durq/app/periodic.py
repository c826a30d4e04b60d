"""Periodic tasks: a task run at every slot of a cron expression, by whichever worker is up.

Workers schedule them themselves, no separate process: each worker running the app stores the
job of each periodic task's next slot ahead of time, ready at the slot, with
``JobQueue.enqueue_periodic``, which records the latest slot stored per task in the same
transaction and stores nothing for a slot already taken. So every slot is stored once, by
the first worker to get there, however many workers run on however many machines; a slot is
only skipped if no worker ran at all between the slot before it and it.

Cron expressions are parsed by ``croniter``: five fields, or six with seconds last
(``* * * * * */10`` is every ten seconds). Slots are in UTC.
"""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from durq.errors import InvalidJob


@dataclasses.dataclass(frozen=True, slots=True)
class Periodic:
    """A task and its cron expression."""

    task: Any  # durq.app.tasks.Task (Any: the task's parameters do not matter here)
    cron: str

    def next_slot(self, after: datetime) -> datetime:
        """The first slot strictly after ``after`` (UTC)."""
        slot: datetime = croniter(self.cron, after.astimezone(UTC)).get_next(datetime)
        return slot.astimezone(UTC)


def checked_cron(cron: object) -> str:
    """A cron expression croniter can read; ``InvalidJob`` in one line otherwise."""
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise InvalidJob(
            f"bad cron expression {cron!r}: use five fields (minute hour day month weekday), "
            "or six with seconds last, like '*/5 * * * *'"
        )
    return cron


def check_no_required_arguments(task: Any) -> None:
    """A periodic task runs with no arguments: refuse one that needs some."""
    required = [
        name
        for name, p in inspect.signature(task.fn).parameters.items()
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if required:
        raise InvalidJob(
            f"task {task.name} cannot be periodic: it needs arguments ({', '.join(required)})"
        )
