"""``durq queues``: list queues; pause and resume them."""

from __future__ import annotations

import click

from durq.cli import fit
from durq.cli import format as fmt
from durq.cli.common import Env, json_option, pass_env, wide_option


@click.group()
def queues() -> None:
    """List queues; pause and resume them."""


@queues.command("list")
@wide_option
@json_option
@pass_env
def queues_list(env: Env, wide: bool, as_json: bool) -> None:
    """List queues with their job counts and whether they are paused."""
    stats = env.queue(create=False).stats()
    if as_json:
        fmt.echo_json([{"name": name, **counts} for name, counts in stats["queues"].items()])
        return
    if not stats["queues"]:
        click.echo("no queues yet")
        return
    fit.show(lambda width: fmt.queues_table(stats, width), wide=wide)


@queues.command("pause")
@click.argument("queue_name", metavar="QUEUE")
@pass_env
def queues_pause(env: Env, queue_name: str) -> None:
    """Stop workers claiming from QUEUE. Its jobs stay; enqueue still works."""
    env.queue(create=False).pause(queue_name)
    click.echo(f"paused queue {queue_name}")


@queues.command("resume")
@click.argument("queue_name", metavar="QUEUE")
@pass_env
def queues_resume(env: Env, queue_name: str) -> None:
    """Let workers claim from QUEUE again."""
    env.queue(create=False).resume(queue_name)
    click.echo(f"resumed queue {queue_name}")
