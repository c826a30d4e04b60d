"""How the ``durq`` command line shows things: rich tables for people, JSON for machines.

Tables fit the terminal (``fit``); one job in full is ``detail``'s.

JSON keys are the dataclass field names (``Job.to_dict()`` and friends), times ISO 8601 UTC,
so ``--json`` output reads the same as the HTTP API. ``job_from_dict`` is the way back, for
``durq import``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from durq.cli import fit
from durq.errors import InvalidJob
from durq.job import Job, JobState, WorkerInfo
from durq.retry import RetryPolicy

# Piped output of ``durq stats --watch`` has no terminal width; wide enough not to cut it.
_PIPE_WIDTH = 1000


def console() -> Console:
    """A console on the current stdout (so CliRunner's capture sees it), for ``Live``."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=False, width=_PIPE_WIDTH)
    return out


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def json_line(data: Any) -> str:
    """One compact line of JSON, for JSON-lines streams."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def when(value: datetime | None) -> str:
    """A time as people read it: UTC, to the second."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float | None) -> str:
    """``95.2`` -> ``1m35s``: waits and durations at a glance."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def ago(value: datetime, now: datetime) -> str:
    """How long before ``now``: ``3m12s ago`` (never negative: clocks differ a little)."""
    return f"{age(max(0.0, (now - value).total_seconds()))} ago"


def first_line(text: str | None) -> str:
    """The line of a traceback that says what went wrong: its last non-empty one."""
    if not text:
        return ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def text(value: object, style: str = "") -> Text:
    # Text, never markup: payloads and errors may contain "[...]" that rich would eat.
    return Text("" if value is None else str(value), style=style)


_STATE_STYLE = {
    JobState.QUEUED: "cyan",
    JobState.RUNNING: "yellow",
    JobState.SUCCEEDED: "green",
    JobState.UNPROCESSABLE: "bold red",
    JobState.CANCELLED: "dim",
}


def state_text(state: JobState) -> Text:
    return Text(state.value, style=_STATE_STYLE.get(state, ""))


def jobs_table(jobs: Sequence[Job], shown_ids: Mapping[str, str], width: int | None) -> Table:
    """Jobs, one a row, ids as ``shown_ids`` has them. On a terminal the last error is cut,
    then it, the times, priority and task give way; id, queue, state and attempts stay."""

    def column(header: str, cells: Iterable[object], **how: Any) -> fit.Column:
        return fit.Column(header, [c if isinstance(c, Text) else text(c) for c in cells], **how)

    # Giving way, in order: the last error and the task are cut short (the task keeps its
    # end, its function's name); the last error, update time, run time, priority and task go.
    tasks = (j.task or "-" for j in jobs)
    errors = (first_line(j.last_error) for j in jobs)
    return fit.table(
        [
            column("ID", (shown_ids.get(j.id, j.id) for j in jobs)),
            column("QUEUE", (j.queue for j in jobs)),
            column("TASK", tasks, rank=7, cut_rank=2, shrink_to=20, keep_end=True),
            column("STATE", (state_text(j.state) for j in jobs)),
            column("PRI", (j.priority for j in jobs), rank=6, justify="right"),
            column("ATTEMPTS", (f"{j.attempts}/{j.max_attempts}" for j in jobs), justify="right"),
            column("RUN AT (UTC)", (when(j.run_at) for j in jobs), rank=5),
            column("UPDATED (UTC)", (when(j.updated_at) for j in jobs), rank=4),
            column("LAST ERROR", errors, rank=3, cut_rank=1, shrink_to=20),
        ],
        width,
    )


def workers_table(
    workers: Sequence[WorkerInfo], shown_ids: Mapping[str, str], width: int | None
) -> Table:
    """Live workers. PID and STARTED tell a restarted worker from the one before it under
    the same id; JOB is a job it runs, by the id ``shown_ids`` gives it."""
    now = datetime.now(UTC)

    def column(header: str, cells: Iterable[object], **how: Any) -> fit.Column:
        return fit.Column(header, [text(c) for c in cells], **how)

    job_ids = [w.current_job_id for w in workers]
    queues = (",".join(w.queues) or "all" for w in workers)
    return fit.table(
        [
            column("ID", (w.id for w in workers)),
            column("HOST", (w.host for w in workers), rank=2, cut_rank=2, shrink_to=12),
            column("PID", (w.pid for w in workers), justify="right"),
            column("QUEUES", queues, rank=3, cut_rank=3, shrink_to=8),
            column("STARTED", (ago(w.started_at, now) for w in workers)),
            column("LAST SEEN", (ago(w.last_seen_at, now) for w in workers), rank=4),
            column("JOB", (shown_ids.get(j, j) if j else "-" for j in job_ids)),
            column("STARTED (UTC)", (when(w.started_at) for w in workers), rank=1),
        ],
        width,
    )


def queues_table(stats: dict[str, Any], width: int | None, totals: bool = False) -> Table:
    """Queues with their state counts, from ``JobQueue.stats()``; ``totals`` adds a sum row.
    On a terminal the oldest wait gives way, then a long queue name is cut (to 10
    characters: the table then fits 80 columns)."""
    queues = stats["queues"]
    columns = [
        fit.Column(
            "QUEUE",
            [text(name) for name in queues],
            cut_rank=2,
            shrink_to=10,
            footer="total",
        ),
        fit.Column(
            "STATUS",
            [
                Text("paused", style="bold yellow") if q.get("paused") else Text("active")
                for q in queues.values()
            ],
        ),
    ]
    for state in JobState:
        counts = [q.get(state.value, 0) for q in queues.values()]
        columns.append(
            fit.Column(
                state.value.upper(),
                [text(n) for n in counts],
                justify="right",
                footer=str(sum(counts)),
            )
        )
    columns.append(
        fit.Column(
            "OLDEST WAIT",
            [text(age(q.get("oldest_queued_age"))) for q in queues.values()],
            rank=1,
            justify="right",
        )
    )
    return fit.table(columns, width, footer=totals and len(queues) > 1)


def database_line(where: str) -> Text:
    """``database: WHERE``, never broken across lines (a path is copied whole)."""
    return fit.whole_line(f"database: {where}")


def stats_view(
    stats: dict[str, Any], where: str, width: int | None, now: datetime | None = None
) -> RenderableType:
    """What ``durq stats`` shows: the database, a heading line, then the queues with totals."""
    now = now or datetime.now(UTC)
    workers = stats.get("workers", 0)
    lines = [
        database_line(where),
        text(f"durq stats at {when(now)} UTC · {workers} worker{'s' * (workers != 1)}"),
    ]
    if not stats["queues"]:
        return Group(*lines, Text("no queues yet"))
    return Group(*lines, Text(""), queues_table(stats, width, totals=True))


# -- the way back: JSON lines -> Job ---------------------------------------------------------

_FIELDS = {f.name: f for f in dataclasses.fields(Job)}
_TIMES = {"run_at", "lease_expires_at", "created_at", "updated_at"}


def _parse_time(name: str, value: Any) -> datetime | None:
    if value is None and name == "lease_expires_at":
        return None
    if not isinstance(value, str):
        raise InvalidJob(f"{name} must be an ISO 8601 time, not {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidJob(f"{name} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidJob(f"{name} has no time zone: {value!r}")
    return parsed.astimezone(UTC)


def export_dict(job: Job) -> dict[str, Any]:
    """A job as ``durq export`` writes it: its JSON form, plus its own retry policy (which
    the JSON form leaves out), so ``durq import`` brings the whole job back."""
    retry = None if job.retry is None else dataclasses.asdict(job.retry)
    return {**job.to_dict(), "retry": retry}


def job_from_dict(data: Any) -> Job:
    """The inverse of ``Job.to_dict()``; ``InvalidJob`` names the first field that is wrong.

    Only the shape is checked here; ``JobQueue.import_jobs`` checks the values it stores.
    """
    if not isinstance(data, dict):
        raise InvalidJob(f"a job must be a JSON object, not {type(data).__name__}")
    # Exports made before tasks existed have no task or retry: plain jobs, the queue's policy.
    data = {"task": None, "retry": None, **data}
    missing = [name for name in _FIELDS if name not in data]
    if missing:
        raise InvalidJob(f"not a durq job: missing {', '.join(missing)}")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise InvalidJob(f"not a durq job: unknown field {unknown[0]!r}")
    values = dict(data)
    for name in _TIMES:
        values[name] = _parse_time(name, values[name])
    try:
        values["state"] = JobState(values["state"])
    except ValueError:
        raise InvalidJob(f"unknown state {values['state']!r}") from None
    if values["retry"] is not None:
        values["retry"] = _retry_policy(values["retry"])
    return Job(**values)


def _retry_policy(value: Any) -> RetryPolicy:
    if not isinstance(value, dict) or set(value) - {"base", "cap", "jitter"}:
        raise InvalidJob(
            f'retry must be {{"base": s, "cap": s, "jitter": f}} or null, not {value!r}'
        )
    try:
        return RetryPolicy(**value)
    except TypeError as exc:
        raise InvalidJob(f"retry: {exc}") from None
