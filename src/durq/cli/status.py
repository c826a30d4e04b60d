"""``durq workers`` and ``durq stats``: what the workers and the queues are doing now."""

from __future__ import annotations

import time

import click

from durq.cli import format as fmt
from durq.cli.common import Env, json_option, pass_env


@click.command()
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


@click.command()
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
