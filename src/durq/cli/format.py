"""How the ``durq`` command line shows things: rich tables for people, JSON for machines.

JSON keys are the dataclass field names (``Job.to_dict()`` and friends), times ISO 8601 UTC,
so ``--json`` output reads the same as the HTTP API. ``job_from_dict`` is the way back, for
``durq import``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from durq.errors import InvalidJob
from durq.job import Attempt, Job, JobState, WorkerInfo
from durq.retry import RetryPolicy

# Tables are read down their columns; a light box keeps them greppable when piped.
_BOX = box.SIMPLE_HEAD
# Piped output has no terminal width; let tables take their natural width, not 80 columns.
_PIPE_WIDTH = 240


def console() -> Console:
    """A console on the current stdout (so CliRunner's capture sees it)."""
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


def first_line(text: str | None, width: int = 60) -> str:
    """The line of a traceback that says what went wrong: its last non-empty one."""
    if not text:
        return ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    line = lines[-1].strip() if lines else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _text(value: object) -> Text:
    # Text, never markup: payloads and errors may contain "[...]" that rich would eat.
    return Text("" if value is None else str(value))


_STATE_STYLE = {
    JobState.QUEUED: "cyan",
    JobState.RUNNING: "yellow",
    JobState.SUCCEEDED: "green",
    JobState.UNPROCESSABLE: "bold red",
    JobState.CANCELLED: "dim",
}


def _state(state: JobState) -> Text:
    return Text(state.value, style=_STATE_STYLE.get(state, ""))


def jobs_table(jobs: Sequence[Job]) -> Table:
    table = Table(box=_BOX, show_edge=False)
    table.add_column("ID", no_wrap=True)
    for name in ("QUEUE", "TASK", "STATE"):
        table.add_column(name, no_wrap=True)
    table.add_column("PRI", justify="right")
    table.add_column("ATTEMPTS", justify="right", no_wrap=True)
    table.add_column("RUN AT (UTC)", no_wrap=True)
    table.add_column("UPDATED (UTC)", no_wrap=True)
    table.add_column("LAST ERROR", overflow="ellipsis", no_wrap=True)
    for job in jobs:
        table.add_row(
            _text(job.id),
            _text(job.queue),
            _text(job.task or "-"),
            _state(job.state),
            _text(job.priority),
            _text(f"{job.attempts}/{job.max_attempts}"),
            _text(when(job.run_at)),
            _text(when(job.updated_at)),
            _text(first_line(job.last_error)),
        )
    return table


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def job_detail(job: Job, attempts: Sequence[Attempt]) -> RenderableType:
    """One job: its fields, payload, result, last error, then its attempt history."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column()
    shown = {
        "id": job.id,
        "queue": job.queue,
        "task": job.task or "-",
        "state": _state(job.state),
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
    for name, value in shown.items():
        fields.add_row(name, value if isinstance(value, Text) else _text(value))
    parts: list[RenderableType] = [fields]
    if job.last_error:
        parts += [Text("\nlast error", style="bold"), _text(job.last_error.rstrip())]
    parts.append(Text("\nattempts", style="bold"))
    parts.append(attempts_table(attempts) if attempts else Text("none yet"))
    return Group(*parts)


def _retry(policy: RetryPolicy | None) -> str:
    if policy is None:
        return "the queue's backoff"
    jitter = f", ±{policy.jitter:.0%}" if policy.jitter else ""
    return f"backoff {policy.base:g}s doubling, at most {policy.cap:g}s{jitter}"


def attempts_table(attempts: Iterable[Attempt]) -> Table:
    table = Table(box=_BOX, show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("WORKER", no_wrap=True)
    table.add_column("STARTED (UTC)", no_wrap=True)
    table.add_column("TOOK", justify="right")
    table.add_column("OUTCOME", no_wrap=True)
    table.add_column("ERROR", overflow="ellipsis", no_wrap=True)
    for a in attempts:
        took = None if a.finished_at is None else (a.finished_at - a.started_at).total_seconds()
        table.add_row(
            _text(a.attempt),
            _text(a.worker_id),
            _text(when(a.started_at)),
            _text(age(took) if took is not None else "running"),
            _text(a.outcome.value if a.outcome else "-"),
            _text(first_line(a.error)),
        )
    return table


def workers_table(workers: Sequence[WorkerInfo]) -> Table:
    table = Table(box=_BOX, show_edge=False)
    for name in ("ID", "HOST", "PID", "QUEUES", "STARTED (UTC)", "LAST SEEN (UTC)", "JOB"):
        table.add_column(name, no_wrap=True, justify="right" if name == "PID" else "left")
    for w in workers:
        table.add_row(
            _text(w.id),
            _text(w.host),
            _text(w.pid),
            _text(",".join(w.queues) if w.queues else "all"),
            _text(when(w.started_at)),
            _text(when(w.last_seen_at)),
            _text(w.current_job_id or "-"),
        )
    return table


def queues_table(stats: dict[str, Any], totals: bool = False) -> Table:
    """Queues with their state counts, from ``JobQueue.stats()``; ``totals`` adds a sum row."""
    table = Table(box=_BOX, show_edge=False, show_footer=totals and len(stats["queues"]) > 1)
    table.add_column("QUEUE", "total", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    for state in JobState:
        total = sum(q.get(state.value, 0) for q in stats["queues"].values())
        table.add_column(state.value.upper(), str(total), justify="right")
    table.add_column("OLDEST WAIT", justify="right")
    for name, counts in stats["queues"].items():
        table.add_row(
            _text(name),
            Text("paused", style="bold yellow") if counts.get("paused") else Text("active"),
            *(_text(counts.get(state.value, 0)) for state in JobState),
            _text(age(counts.get("oldest_queued_age"))),
        )
    return table


def stats_view(stats: dict[str, Any], now: datetime | None = None) -> RenderableType:
    """What ``durq stats`` shows: a heading line, then the queues table with totals."""
    now = now or datetime.now(UTC)
    workers = stats.get("workers", 0)
    heading = Text(f"durq stats at {when(now)} UTC · {workers} worker{'s' * (workers != 1)}")
    if not stats["queues"]:
        return Group(heading, Text("no queues yet"))
    return Group(heading, Text(""), queues_table(stats, totals=True))


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
