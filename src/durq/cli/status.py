"""``durq workers`` and ``durq stats``: what the workers and the queues are doing now.

Their tables name the database they read first: an empty answer from the wrong database
looks like an idle queue.
"""

from __future__ import annotations

import time

import click
from rich.console import Group, RenderableType
from rich.text import Text

from durq.cli import fit
from durq.cli import format as fmt
from durq.cli.common import Env, json_option, pass_env, wide_option


@click.command()
@wide_option
@json_option
@pass_env
def workers(env: Env, wide: bool, as_json: bool) -> None:
    """List live workers and the job each is running.

    A worker that has not reported for a minute is left out. PID and STARTED tell a
    restarted worker from the one before it under the same id; JOB is a job it runs (a
    unique start of its id, on a terminal).
    """
    q = env.queue(create=False)
    found = q.workers()
    if as_json:
        fmt.echo_json([w.to_dict() for w in found])
        return
    heading = fmt.database_line(env.display_url)
    if not found:
        fit.show(lambda width: Group(heading, Text("no workers")))
        return

    def view(width: int | None) -> RenderableType:
        running = [w.current_job_id for w in found if w.current_job_id]
        shown = {} if width is None or not running else q.short_ids(running)
        return Group(heading, fmt.workers_table(found, shown, width))

    fit.show(view, wide=wide)


@click.command()
@json_option
@wide_option
@click.option("--watch", is_flag=True, help="Refresh on screen until Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@pass_env
def stats(env: Env, as_json: bool, wide: bool, watch: bool, interval: float) -> None:
    """Job counts per queue and state, paused queues, live workers.

    The first line names the database. With --json, the shape is {"queues": {NAME:
    {STATE: n, ..., "paused": bool, "oldest_queued_age": seconds or null}}, "workers": n}.
    """
    if as_json and watch:
        raise click.UsageError("--watch is for people; use --json without it")
    q = env.queue(create=False)
    if as_json:
        fmt.echo_json(q.stats())
        return
    where = env.display_url
    if not watch:
        fit.show(lambda width: fmt.stats_view(q.stats(), where, width), wide=wide)
        return
    from rich.live import Live

    console = fmt.console()

    def view() -> RenderableType:
        # The terminal's width now: it may be resized while watched.
        width = console.width if console.is_terminal and not wide else None
        return fmt.stats_view(q.stats(), where, width)

    try:
        with Live(view(), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(view(), refresh=True)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --watch ends: not an error
    if not console.is_terminal:
        console.line()  # a non-terminal Live leaves its last frame without a newline
