"""``durq jobs show``: one job in full, with its attempt history.

Errors are shown whole (tracebacks are read from the bottom up; a cut one loses its cause).
Attempts are numbered straight through, across resubmits (``durq.history``). A job's
current error is the one it is waiting or stuck on: a succeeded job has none, whatever an
earlier attempt went through (that stays in its history).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from durq.cli.format import age, first_line, state_text, text, when
from durq.history import Entry, numbered
from durq.job import Attempt, Job, JobState, Outcome
from durq.retry import RetryPolicy

_OUTCOME_STYLE = {
    Outcome.SUCCEEDED: "green",
    Outcome.FAILED: "red",
    Outcome.UNPROCESSABLE: "bold red",
    Outcome.LOST: "red",
}


def job_detail(job: Job, attempts: Sequence[Attempt]) -> RenderableType:
    """One job: its fields, payload, result, current error, then its attempt history."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column()
    shown: dict[str, Any] = {
        "id": job.id,
        "queue": job.queue,
        "task": job.task or "-",
        "state": state_text(job.state),
        "priority": job.priority,
        "attempts": f"{job.attempts} of {job.max_attempts}",
        "timeout": f"{job.timeout:g}s",
        "retry": _retry(job.retry),
        "run at": when(job.run_at),
        "created": when(job.created_at),
        "updated": when(job.updated_at),
        "dedupe key": job.dedupe_key or "-",
        "worker": job.worker_id or "-",
        "lease expires": when(job.lease_expires_at),
        "payload": _pretty_json(job.payload),
        "result": "-" if job.result is None else _pretty_json(job.result),
    }
    error = current_error(job)
    if error:
        style = "bold red" if job.state is JobState.UNPROCESSABLE else ""
        shown["last error"] = text(first_line(error), style)
    for name, value in shown.items():
        fields.add_row(name, value if isinstance(value, Text) else text(value))
    parts: list[RenderableType] = [fields]
    if error and not any(a.error == error for a in attempts):
        # Not in the history (which shows every error in full): show it whole here.
        parts += [Text("\nlast error", style="bold"), text(error.rstrip())]
    parts.append(Text("\nattempts", style="bold"))
    parts.append(attempt_history(attempts) if attempts else Text("none yet"))
    return Group(*parts)


def current_error(job: Job) -> str | None:
    """The error the job is waiting on (to be retried) or stuck with; none once it succeeded."""
    return None if job.state is JobState.SUCCEEDED else job.last_error


def attempt_history(attempts: Sequence[Attempt]) -> Table:
    """Each attempt, numbered, on one line, its error in full beneath it; a resubmit marked
    where it came in."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column()
    for entry in numbered(attempts):
        if entry.resubmitted:
            grid.add_row("", Text("resubmitted", style="bold cyan"))
        grid.add_row(text(entry.number), _summary(entry))
        if entry.attempt.error:
            grid.add_row("", text(entry.attempt.error.rstrip()))
    return grid


def _summary(entry: Entry) -> Text:
    a = entry.attempt
    outcome = "running" if a.finished_at is None else (a.outcome.value if a.outcome else "-")
    took = None if a.finished_at is None else (a.finished_at - a.started_at).total_seconds()
    line = Text()
    line.append(outcome, style=_OUTCOME_STYLE.get(a.outcome, "") if a.outcome else "yellow")
    line.append(f" · worker {a.worker_id} · started {when(a.started_at)} UTC")
    if took is not None:
        line.append(f" · took {age(took)}")
    return line


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _retry(policy: RetryPolicy | None) -> str:
    if policy is None:
        return "the queue's backoff"
    jitter = f", ±{policy.jitter:.0%}" if policy.jitter else ""
    return f"backoff {policy.base:g}s doubling, at most {policy.cap:g}s{jitter}"
