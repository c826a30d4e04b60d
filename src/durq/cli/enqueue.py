"""``durq enqueue`` and ``durq produce``: the commands that submit jobs."""

from __future__ import annotations

import sys
from typing import Any

import click

from durq import codec
from durq.cli import format as fmt
from durq.cli.common import (
    Env,
    json_option,
    load_app_from_cwd,
    log_to_stderr,
    pass_env,
    queue_option,
)
from durq.errors import InvalidJob
from durq.job import JSON, Job

ENQUEUE_BATCH = 1000  # stdin lines per enqueue_many transaction


@click.command()
@click.argument("payload", metavar="[PAYLOAD]", required=False)
@click.option(
    "--task",
    "task_name",
    default=None,
    metavar="NAME",
    help="Enqueue a task of the app instead; its arguments come from --args and --kwargs.",
)
@click.option(
    "--args", "task_args", default=None, metavar="JSON-ARRAY", help="With --task: its arguments."
)
@click.option(
    "--kwargs",
    "task_kwargs",
    default=None,
    metavar="JSON-OBJECT",
    help="With --task: its keyword arguments.",
)
@click.option(
    "--app",
    "app_spec",
    envvar="DURQ_APP",
    show_envvar=True,
    default=None,
    metavar="MOD:APP",
    help="With --task: the durq.App that defines it, as package.module:app.",
)
@queue_option("The queue to add to [default: default, or the task's].")
@click.option("--priority", type=int, default=None, help="Higher runs first [default: 0].")
@click.option(
    "--delay", type=float, default=0.0, show_default=True, help="Seconds before it may run."
)
@click.option(
    "--max-attempts",
    type=int,
    default=None,
    help="Attempts before it is unprocessable [default: 5, or the task's].",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds one attempt may run [default: 300, or the task's].",
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
    payload: str | None,
    task_name: str | None,
    task_args: str | None,
    task_kwargs: str | None,
    app_spec: str | None,
    queue_name: str | None,
    priority: int | None,
    delay: float,
    max_attempts: int | None,
    timeout: float | None,
    dedupe_key: str | None,
    as_json: bool,
) -> None:
    """Submit a job (PAYLOAD is JSON text), or a task (--task NAME); print its id.

    With PAYLOAD "-", read JSON lines from stdin, one job per line (blank lines are skipped),
    and print one id per line. Lines are stored in batches of 1000, each batch in one
    transaction: a bad line stops the command with an error naming it, and nothing from its
    batch is stored (the ids of the batches before it were printed).

    With --task, the job runs the app's task NAME with --args (a JSON array) and --kwargs
    (a JSON object), checked against the task's signature; the task's own queue, priority,
    attempts and timeout apply unless given here. The app is --app or $DURQ_APP; its
    database is used unless --db or $DURQ_URL says otherwise.

    \b
    Examples:
      durq enqueue '{"to": "ada@example.com"}'
      durq enqueue --queue mail --priority 10 --delay 60 '{"n": 1}'
      printf '{"n": 1}\\n{"n": 2}\\n' | durq enqueue -
      durq enqueue --app tour:app --task tour.send_email --args '["ada@example.com"]'
    """

    def show(job: Job) -> None:
        click.echo(fmt.json_line(job.to_dict()) if as_json else job.id)

    if task_name is not None:
        if payload is not None:
            raise click.UsageError("give PAYLOAD or --task, not both")
        overrides = {
            "queue": queue_name,
            "priority": priority,
            "max_attempts": max_attempts,
            "timeout": timeout,
            "dedupe_key": dedupe_key,
        }
        show(_enqueue_task(env, app_spec, task_name, task_args, task_kwargs, delay, overrides))
        return
    if payload is None:
        raise click.UsageError("give PAYLOAD (JSON text, or - for JSON lines on stdin) or --task")
    if task_args is not None or task_kwargs is not None:
        raise click.UsageError("--args and --kwargs go with --task")
    options: dict[str, Any] = {
        "queue": "default" if queue_name is None else queue_name,
        "priority": 0 if priority is None else priority,
        "delay": delay,
        "max_attempts": 5 if max_attempts is None else max_attempts,
        "timeout": 300.0 if timeout is None else timeout,
    }
    if payload != "-":
        value = codec.parse(payload, "PAYLOAD")
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
            value = codec.parse(line.rstrip("\r\n"), where)
            # Checked here too, to name the line rather than the batch.
            codec.encode(value, f"{where}: the payload", limit, q.settings.max_payload_depth)
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


def _enqueue_task(
    env: Env,
    app_spec: str | None,
    task_name: str,
    task_args: str | None,
    task_kwargs: str | None,
    delay: float,
    overrides: dict[str, Any],
) -> Job:
    """Enqueue the app's task ``task_name`` with the arguments given as JSON text."""
    if app_spec is None:
        raise click.UsageError("--task needs the app that defines it: --app MOD:APP or $DURQ_APP")
    args = codec.parse(task_args or "[]", "--args")
    kwargs = codec.parse(task_kwargs or "{}", "--kwargs")
    if not isinstance(args, list):
        raise InvalidJob(f"--args must be a JSON array, not {task_args}")
    if not isinstance(kwargs, dict):
        raise InvalidJob(f"--kwargs must be a JSON object, not {task_kwargs}")
    app = load_app_from_cwd(app_spec)
    task = app.tasks.get(task_name)
    if task is None:
        known = ", ".join(sorted(app.tasks)) or "none"
        raise InvalidJob(f"app {app_spec} has no task {task_name!r}; its tasks: {known}")
    env.app_queue(app)
    given = {name: value for name, value in overrides.items() if value is not None}
    job: Job = task.configure(delay=delay, **given).enqueue(*args, **kwargs)
    return job


@click.command()
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
@queue_option("The queue to add to.", default="default")
@pass_env
def produce(env: Env, interval: float, count: int | None, queue_name: str) -> None:
    """Demo producer: submit a transfer every --interval seconds.

    Each job's id is logged to stderr. SIGTERM or SIGINT stops it cleanly (exit 0). Run
    `durq worker --handler durq.demo:apply_transfer` to apply the transfers to the demo
    ledger, and `durq demo verify` to check it.
    """
    from durq.demo import transfer_payload
    from durq.producer import Producer

    with log_to_stderr(env.debug):
        producer = Producer(
            env.queue(), transfer_payload, queue_name=queue_name, interval=interval, count=count
        )
        code = producer.run()
    sys.exit(code)
