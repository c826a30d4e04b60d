"""The ``durq`` command line: submit jobs, run workers, and look after the queue.

One click group, ``main``. The shared options (``--db``, ``--json``) are defined once here.
A ``DurqError`` becomes one ``error: …`` line on stderr and exit status 1 at the command
boundary (``--debug`` shows the traceback instead); click's usage errors exit 2.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any

import click

from durq import cli_format as fmt
from durq.backends import DEFAULT_URL, connect
from durq.codec import encode as encode_json
from durq.durations import parse_duration
from durq.errors import DurqError, InvalidJob, JobNotFound
from durq.job import CANCELLABLE_STATES, FINISHED_STATES, JSON, Job, JobState
from durq.queue import DEFAULT_LEASE, JobQueue

ENQUEUE_BATCH = 1000  # stdin lines per enqueue_many transaction
EXPORT_PAGE = 1000  # the largest page list_jobs serves
DASHBOARD_EXTRA = "the dashboard needs the 'dashboard' extra: pip install 'durq[dashboard]'"
# Modules the dashboard extra installs; a missing one means the extra is missing.
_DASHBOARD_DEPENDENCIES = {
    "starlette",
    "jinja2",
    "uvicorn",
    "multipart",
    "python_multipart",
    "prometheus_client",
    "anyio",
    "httpx",
}


# -- errors ----------------------------------------------------------------------------------


class CommandError(click.ClickException):
    """A failed command: ``error: <message>`` on stderr, exit status 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class DurqGroup(click.Group):
    """The top group: turns a ``DurqError`` from any command into a ``CommandError``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DurqError as exc:
            if ctx.params.get("debug"):
                raise
            raise CommandError(" ".join(str(exc).split()) or type(exc).__name__) from exc


# -- shared state and options ----------------------------------------------------------------


@dataclasses.dataclass
class Env:
    """What the top group hands every command: where the queue is, and a lazy connection."""

    db_url: str
    debug: bool
    _queue: JobQueue | None = None

    def queue(self) -> JobQueue:
        """The queue, opened on first use (so ``--help`` never creates a database)."""
        if self._queue is None:
            self._queue = connect(self.db_url)
            click.get_current_context().find_root().call_on_close(self._queue.close)
        return self._queue


pass_env = click.make_pass_decorator(Env)

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON for machines instead of a table."
)


def _state_choice(states: Sequence[JobState]) -> click.Choice[str]:
    return click.Choice([s.value for s in states])


ALL_STATES = _state_choice(list(JobState))
FINISHED = _state_choice(sorted(FINISHED_STATES))
CANCELLABLE = _state_choice(sorted(CANCELLABLE_STATES))


if TYPE_CHECKING:
    _ParamType = click.ParamType[timedelta]
else:  # click < 8.2's ParamType is not generic: subscripting it fails at run time
    _ParamType = click.ParamType


class DurationType(_ParamType):
    """``30s``, ``15m``, ``2h``, ``7d``, ``1h30m`` as a ``timedelta``; else a usage error."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = DurationType()


@contextmanager
def _log_to_stderr(debug: bool) -> Iterator[None]:
    """Log durq's events to stderr for a long-running command (Supervisor keeps the files)."""
    logger = logging.getLogger("durq")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


# -- the group -------------------------------------------------------------------------------


@click.group(cls=DurqGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_url",
    envvar="DURQ_URL",
    default=DEFAULT_URL,
    show_default=True,
    show_envvar=True,
    metavar="URL",
    help="The queue's database: sqlite:///relative.db, sqlite:////abs.db or postgresql://…",
)
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.version_option(package_name="durq")
@click.pass_context
def main(ctx: click.Context, db_url: str, debug: bool) -> None:
    """durq: a durable job queue.

    Submit jobs with `durq enqueue`, run them with `durq worker`, and look after them with
    `durq jobs`, `durq queues`, `durq workers` and `durq stats`. Exit status: 0 done,
    1 error (one `error:` line on stderr), 2 usage error.
    """
    ctx.obj = Env(db_url=db_url, debug=debug)


# -- producers -------------------------------------------------------------------------------


def _parse_payload(text: str, where: str) -> JSON:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
        raise InvalidJob(f"{where} is not JSON: {exc.msg} at {at}") from None


@main.command()
@click.argument("payload", metavar="PAYLOAD")
@click.option(
    "--queue", "-q", "queue_name", default="default", show_default=True, help="The queue to add to."
)
@click.option("--priority", type=int, default=0, show_default=True, help="Higher runs first.")
@click.option(
    "--delay", type=float, default=0.0, show_default=True, help="Seconds before it may run."
)
@click.option(
    "--max-attempts",
    type=int,
    default=5,
    show_default=True,
    help="Attempts before it is unprocessable.",
)
@click.option(
    "--timeout", type=float, default=300.0, show_default=True, help="Seconds one attempt may run."
)
@click.option(
    "--dedupe-key",
    default=None,
    help="While a queued or running job has this key, return its id instead of adding one.",
)
@json_option
@pass_env
def enqueue(
    env: Env,
    payload: str,
    queue_name: str,
    priority: int,
    delay: float,
    max_attempts: int,
    timeout: float,
    dedupe_key: str | None,
    as_json: bool,
) -> None:
    """Submit a job (PAYLOAD is JSON text); print its id.

    With PAYLOAD "-", read JSON lines from stdin, one job per line (blank lines are skipped),
    and print one id per line. Lines are stored in batches of 1000, each batch in one
    transaction: a bad line stops the command with an error naming it, and nothing from its
    batch is stored (the ids of the batches before it were printed).

    \b
    Examples:
      durq enqueue '{"to": "ada@example.com"}'
      durq enqueue --queue mail --priority 10 --delay 60 '{"n": 1}'
      printf '{"n": 1}\\n{"n": 2}\\n' | durq enqueue -
    """
    options: dict[str, Any] = {
        "queue": queue_name,
        "priority": priority,
        "delay": delay,
        "max_attempts": max_attempts,
        "timeout": timeout,
    }

    def show(job: Job) -> None:
        click.echo(fmt.json_line(job.to_dict()) if as_json else job.id)

    if payload != "-":
        value = _parse_payload(payload, "PAYLOAD")
        show(env.queue().enqueue(value, dedupe_key=dedupe_key, **options))
        return
    if dedupe_key is not None:
        raise click.UsageError("--dedupe-key names one job; it cannot be used with '-'")
    q = env.queue()
    limit = q.settings.max_payload_bytes
    batch: list[JSON] = []
    first = 0
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        if not batch:
            first = number
        where = f"line {number}"
        try:
            value = _parse_payload(line.rstrip("\r\n"), where)
            # name the line, not the batch
            encode_json(value, f"{where}: the payload", limit, q.settings.max_payload_depth)
        except InvalidJob as exc:
            raise InvalidJob(f"{exc}; nothing from line {first} on was stored") from None
        batch.append(value)
        if len(batch) == ENQUEUE_BATCH:
            for job in q.enqueue_many(batch, **options):
                show(job)
            batch = []
    if batch:
        for job in q.enqueue_many(batch, **options):
            show(job)


@main.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds between jobs.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many jobs (default: run until stopped).",
)
@click.option(
    "--queue", "-q", "queue_name", default="default", show_default=True, help="The queue to add to."
)
@pass_env
def produce(env: Env, interval: float, count: int | None, queue_name: str) -> None:
    """Demo producer: submit a transfer every --interval seconds.

    Each job's id is logged to stderr. SIGTERM or SIGINT stops it cleanly (exit 0). Run
    `durq worker --handler durq.demo:apply_transfer` to apply the transfers to the demo
    ledger, and `durq demo verify` to check it.
    """
    from durq.demo import transfer_payload
    from durq.producer import Producer

    with _log_to_stderr(env.debug):
        producer = Producer(
            env.queue(), transfer_payload, queue_name=queue_name, interval=interval, count=count
        )
        code = producer.run()
    sys.exit(code)


# -- consumers -------------------------------------------------------------------------------


@main.command()
@click.option(
    "--handler",
    "handler_spec",
    required=True,
    metavar="MOD:FUNC",
    help="The handler function, as package.module:function.",
)
@click.option(
    "--queue",
    "-q",
    "queues",
    multiple=True,
    help="A queue to take jobs from; repeat for several (default: every queue).",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_LEASE,
    show_default=True,
    help="Seconds a claim lasts; renewed every third of it.",
)
@click.option("--worker-id", default=None, help="The worker's name [default: host:pid].")
@click.option("--burst", is_flag=True, help="Exit 0 when no job is ready.")
@click.option(
    "--max-jobs", type=click.IntRange(min=1), default=None, help="Exit after this many jobs."
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="On SIGTERM, seconds the current job may take before it is released.",
)
@pass_env
def worker(
    env: Env,
    handler_spec: str,
    queues: tuple[str, ...],
    lease: float,
    worker_id: str | None,
    burst: bool,
    max_jobs: int | None,
    grace: float,
) -> None:
    """Run jobs, one at a time, with the handler MOD:FUNC.

    The handler is a function `handle(job) -> result`: its return value is stored as the
    job's result; an exception fails the attempt (retried with backoff); raising
    `durq.Unprocessable` fails the job for good. Modules are imported from the current
    directory first. A handler that cannot be imported stops the worker before it claims
    anything.

    SIGTERM/SIGINT: stop claiming, let the current job finish within --grace, else release
    it; a second signal releases it at once. Exit 0. Run several workers for parallelism.

    \b
    Example:
      durq worker --handler durq.demo:apply_transfer --queue default
    """
    from durq.worker import Worker, load_handler

    # Handlers live in the user's project: import from the current directory first, as
    # `python -m` and rq's and celery's workers do.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    with _log_to_stderr(env.debug):
        handler = load_handler(handler_spec)  # before connecting: a typo claims nothing
        runner = Worker(
            env.queue(),
            handler,
            queues=list(queues) or None,
            lease=lease,
            worker_id=worker_id,
            grace=grace,
            burst=burst,
            max_jobs=max_jobs,
        )
        code = runner.run()
    sys.exit(code)


# -- jobs ------------------------------------------------------------------------------------


@main.group()
def jobs() -> None:
    """List, inspect, resubmit, cancel and delete jobs."""


@jobs.command("list")
@click.option("--state", type=ALL_STATES, default=None, help="Only jobs in this state.")
@click.option("--queue", "-q", "queue_name", default=None, help="Only jobs of this queue.")
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=50,
    show_default=True,
    help="At most this many (1-1000).",
)
@click.option(
    "--before",
    metavar="ID",
    default=None,
    help="The next page: jobs older than this id (the last of the previous page).",
)
@json_option
@pass_env
def jobs_list(
    env: Env,
    state: str | None,
    queue_name: str | None,
    limit: int,
    before: str | None,
    as_json: bool,
) -> None:
    """List jobs, newest first.

    \b
    Examples:
      durq jobs list --state unprocessable
      durq jobs list --queue mail --limit 100 --json | jq -r '.[].id'
    """
    found = env.queue().list_jobs(state=state, queue=queue_name, limit=limit, before=before)
    if as_json:
        fmt.echo_json([job.to_dict() for job in found])
        return
    if not found:
        click.echo("no jobs")
        return
    fmt.console().print(fmt.jobs_table(found))
    if len(found) == limit:
        click.echo(f"more: add --before {found[-1].id}", err=True)


@jobs.command("show")
@click.argument("job_id", metavar="ID")
@json_option
@pass_env
def jobs_show(env: Env, job_id: str, as_json: bool) -> None:
    """Show one job with its attempt history.

    With --json: {"job": {...}, "attempts": [...]}, the job's fields (as in `durq jobs list
    --json`) and its attempt records, oldest first; the same as the dashboard's
    /api/jobs/ID.
    """
    q = env.queue()
    job = q.get(job_id)
    history = q.attempts(job_id)
    if as_json:
        fmt.echo_json({"job": job.to_dict(), "attempts": [a.to_dict() for a in history]})
        return
    fmt.console().print(fmt.job_detail(job, history))


def _act_on_ids(
    q: JobQueue,
    ids: Sequence[str],
    *,
    verb: str,
    past: str,
    allowed: frozenset[JobState],
    act: Callable[[str], object],
) -> None:
    """Apply ``act`` to every id, all or nothing as far as the ids go.

    Every id is checked first (it exists, its state allows the action); if any fails the
    check, each failure is reported and nothing is changed, so the command can be fixed and
    run again. A job that changes in between (a worker or another admin got there first) is
    reported and the others still happen; the exit status is then 1.
    """
    unique = list(dict.fromkeys(ids))
    problems: list[str] = []
    for job_id in unique:
        try:
            job = q.get(job_id)
        except JobNotFound as exc:
            problems.append(str(exc))
            continue
        if job.state not in allowed:
            problems.append(f"cannot {verb} job {job_id}: it is {job.state}")
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        if len(unique) > 1:
            click.echo("error: nothing was changed", err=True)
        sys.exit(1)
    failed = 0
    for job_id in unique:
        try:
            act(job_id)
        except DurqError as exc:
            failed += 1
            click.echo(f"error: {exc}", err=True)
        else:
            click.echo(f"{past} {job_id}")
    if failed:
        sys.exit(1)


def _ids_or_state(ids: Sequence[str], state: str | None, queue_name: str | None) -> None:
    if ids and state:
        raise click.UsageError("give job IDs or --state, not both")
    if not ids and not state:
        raise click.UsageError("give one or more job IDs, or --state to choose jobs by state")
    if queue_name and not state:
        raise click.UsageError("--queue narrows --state; it needs --state")


@jobs.command("resubmit")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option(
    "--state", type=FINISHED, default=None, help="Resubmit every job in this state instead."
)
@click.option("--queue", "-q", "queue_name", default=None, help="With --state: only this queue.")
@pass_env
def jobs_resubmit(
    env: Env, ids: tuple[str, ...], state: str | None, queue_name: str | None
) -> None:
    """Queue finished jobs again, their attempts reset.

    Give job IDs, or --state (usually unprocessable) for every job in that state. Every ID
    is checked first: if one is unknown or not finished, each problem is reported and nothing
    is changed (exit 1).

    \b
    Examples:
      durq jobs resubmit 0195f3c4-6f2a-7b1e-9c3d-2a4b5c6d7e8f
      durq jobs resubmit --state unprocessable --queue mail
    """
    _ids_or_state(ids, state, queue_name)
    q = env.queue()
    if state:
        n = q.resubmit_all(state, queue=queue_name)
        click.echo(f"resubmitted {n} job{'s' * (n != 1)}")
        return
    _act_on_ids(
        q, ids, verb="resubmit", past="resubmitted", allowed=FINISHED_STATES, act=q.resubmit
    )


@jobs.command("cancel")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option(
    "--state", type=CANCELLABLE, default=None, help="Cancel every job in this state instead."
)
@click.option("--queue", "-q", "queue_name", default=None, help="With --state: only this queue.")
@pass_env
def jobs_cancel(env: Env, ids: tuple[str, ...], state: str | None, queue_name: str | None) -> None:
    """Cancel queued or unprocessable jobs.

    A running job cannot be cancelled. Give job IDs, or --state for every job in that
    state. Every ID is checked first: if one is unknown or in another state, each problem
    is reported and nothing is changed (exit 1).
    """
    _ids_or_state(ids, state, queue_name)
    q = env.queue()
    if state:
        n = q.cancel_all(state, queue=queue_name)
        click.echo(f"cancelled {n} job{'s' * (n != 1)}")
        return
    _act_on_ids(q, ids, verb="cancel", past="cancelled", allowed=CANCELLABLE_STATES, act=q.cancel)


@jobs.command("delete")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@pass_env
def jobs_delete(env: Env, ids: tuple[str, ...]) -> None:
    """Delete finished jobs and their history.

    Only succeeded, unprocessable and cancelled jobs can be deleted. Every ID is checked
    first: if one is unknown or not finished, each problem is reported and nothing is
    changed (exit 1).
    """
    q = env.queue()
    _act_on_ids(q, ids, verb="delete", past="deleted", allowed=FINISHED_STATES, act=q.delete)


@jobs.command("purge")
@click.option(
    "--older-than",
    type=DURATION,
    required=True,
    metavar="DURATION",
    help="Last updated longer ago than this: 30s, 15m, 2h, 7d, 1h30m.",
)
@click.option(
    "--state",
    "states",
    type=FINISHED,
    multiple=True,
    help="Only this finished state; repeat for several (default: all three).",
)
@pass_env
def jobs_purge(env: Env, older_than: timedelta, states: tuple[str, ...]) -> None:
    """Delete finished jobs older than --older-than.

    Only finished jobs (succeeded, unprocessable, cancelled) are ever deleted, in short
    batches so workers keep going.

    \b
    Example:
      durq jobs purge --older-than 7d --state succeeded
    """
    n = env.queue().purge(older_than, states=list(states) or None)
    click.echo(f"purged {n} job{'s' * (n != 1)}")


# -- queues, workers, stats ------------------------------------------------------------------


@main.group()
def queues() -> None:
    """List queues; pause and resume them."""


@queues.command("list")
@json_option
@pass_env
def queues_list(env: Env, as_json: bool) -> None:
    """List queues with their job counts and whether they are paused."""
    stats = env.queue().stats()
    if as_json:
        fmt.echo_json([{"name": name, **counts} for name, counts in stats["queues"].items()])
        return
    if not stats["queues"]:
        click.echo("no queues yet")
        return
    fmt.console().print(fmt.queues_table(stats))


@queues.command("pause")
@click.argument("queue_name", metavar="QUEUE")
@pass_env
def queues_pause(env: Env, queue_name: str) -> None:
    """Stop workers claiming from QUEUE. Its jobs stay; enqueue still works."""
    env.queue().pause(queue_name)
    click.echo(f"paused queue {queue_name}")


@queues.command("resume")
@click.argument("queue_name", metavar="QUEUE")
@pass_env
def queues_resume(env: Env, queue_name: str) -> None:
    """Let workers claim from QUEUE again."""
    env.queue().resume(queue_name)
    click.echo(f"resumed queue {queue_name}")


@main.command()
@json_option
@pass_env
def workers(env: Env, as_json: bool) -> None:
    """List live workers and the job each is running.

    A worker that has not reported for a minute is left out.
    """
    found = env.queue().workers()
    if as_json:
        fmt.echo_json([w.to_dict() for w in found])
        return
    if not found:
        click.echo("no workers")
        return
    fmt.console().print(fmt.workers_table(found))


@main.command()
@json_option
@click.option("--watch", is_flag=True, help="Refresh on screen until Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@pass_env
def stats(env: Env, as_json: bool, watch: bool, interval: float) -> None:
    """Job counts per queue and state, paused queues, live workers.

    With --json, the shape is {"queues": {NAME: {STATE: n, ..., "paused": bool,
    "oldest_queued_age": seconds or null}}, "workers": n}.
    """
    q = env.queue()
    if as_json and watch:
        raise click.UsageError("--watch is for people; use --json without it")
    if as_json:
        fmt.echo_json(q.stats())
        return
    if not watch:
        fmt.console().print(fmt.stats_view(q.stats()))
        return
    from rich.live import Live

    console = fmt.console()
    try:
        with Live(fmt.stats_view(q.stats()), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(fmt.stats_view(q.stats()), refresh=True)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --watch ends: not an error
    if not console.is_terminal:
        console.line()  # a non-terminal Live leaves its last frame without a newline


# -- moving queues ---------------------------------------------------------------------------


@main.command()
@click.option(
    "--state",
    type=ALL_STATES,
    default=JobState.QUEUED.value,
    show_default=True,
    help="Jobs in this state (`durq import` takes queued jobs only).",
)
@click.option("--queue", "-q", "queue_name", default=None, help="Only jobs of this queue.")
@pass_env
def export(env: Env, state: str, queue_name: str | None) -> None:
    """Write jobs as JSON lines, for `durq import`.

    One job per line (its --json fields), newest first, to stdout. With `durq import`,
    this moves a queue between databases, ids and all:

    \b
      durq --db sqlite:///durq.db export > jobs.jsonl
      durq --db postgresql://db/durq import jobs.jsonl

    Stop the workers on the old queue first, so no job is run on both.
    """
    q = env.queue()
    before: str | None = None
    while True:
        page = q.list_jobs(state=state, queue=queue_name, limit=EXPORT_PAGE, before=before)
        for job in page:
            click.echo(fmt.json_line(job.to_dict()))
        if len(page) < EXPORT_PAGE:
            return
        before = page[-1].id


@main.command("import")
@click.argument("source", type=click.File("r"), default="-", metavar="[FILE]")
@pass_env
def import_(env: Env, source: IO[str]) -> None:
    """Add the jobs of a `durq export` file, keeping their ids.

    FILE defaults to stdin. Every line is read and checked before anything is stored;
    then all jobs are added in one transaction. Jobs already present are skipped, so an
    import can be run again safely. Prints how many jobs were added.
    """
    found: list[Job] = []
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            found.append(fmt.job_from_dict(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InvalidJob(
                f"line {number} is not JSON: {exc.msg}; nothing was imported"
            ) from None
        except InvalidJob as exc:
            raise InvalidJob(f"line {number}: {exc}; nothing was imported") from None
    added = env.queue().import_jobs(found) if found else 0
    skipped = len(found) - added
    note = f" ({skipped} already present)" if skipped else ""
    click.echo(f"imported {added} job{'s' * (added != 1)}{note}")


# -- the dashboard and the demo --------------------------------------------------------------


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback needs --token.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on.",
)
@click.option(
    "--token",
    envvar="DURQ_DASHBOARD_TOKEN",
    show_envvar=True,
    default=None,
    help="Require this token (Authorization: Bearer, or the login page) for pages and the API.",
)
@pass_env
def dashboard(env: Env, host: str, port: int, token: str | None) -> None:
    """Serve the web dashboard and its HTTP API.

    Pages, plus /api/jobs, /api/jobs/ID, /api/stats, /metrics (Prometheus) and /healthz.
    Needs the 'dashboard' extra: pip install 'durq[dashboard]'.
    """
    try:
        from durq.dashboard import serve

        serve(env.db_url, host, port, token)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _DASHBOARD_DEPENDENCIES:
            raise
        raise CommandError(DASHBOARD_EXTRA) from exc


@main.group()
def demo() -> None:
    """The demo workload: money transfers applied to a ledger.

    `durq produce` submits transfers, `durq worker --handler durq.demo:apply_transfer`
    applies them, `durq demo verify` checks the ledger.
    """


@demo.command("verify")
@pass_env
def demo_verify(env: Env) -> None:
    """Check the demo ledger: balances equal the applied transfers, none applied twice.

    Exit 0 when it holds; else print each discrepancy and exit 1. The ledger is
    $DURQ_DEMO_DB, by default beside the queue's database file.
    """
    from durq import demo as workload

    path = workload.ledger_path(env.db_url)
    problems = workload.verify(path)
    if not problems:
        click.echo(f"ledger OK: {path}")
        return
    for problem in problems:
        click.echo(problem)
    n = len(problems)
    raise CommandError(f"the ledger {path} has {n} discrepanc{'ies' if n != 1 else 'y'}")
