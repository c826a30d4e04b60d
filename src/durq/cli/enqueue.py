"""``durq enqueue`` and ``durq produce``: the commands that submit jobs."""

from __future__ import annotations

import sys
from typing import Any

import click

from durq import codec
from durq.cli import format as fmt
from durq.cli.common import Env, json_option, log_to_stderr, pass_env, queue_option
from durq.errors import InvalidJob
from durq.job import JSON, Job

ENQUEUE_BATCH = 1000  # stdin lines per enqueue_many transaction


@click.command()
@click.argument("payload", metavar="PAYLOAD")
@queue_option("The queue to add to.", default="default")
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
