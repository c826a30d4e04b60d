"""The ``durq`` command line: submit jobs, run workers, and look after the queue.

One click group, ``main``, defined here with the options every command sees (``--db``,
``--debug``); each command or command group is a module of this package, and the options
several commands share are defined once in ``common``. A ``DurqError`` becomes one
``error: …`` line on stderr and exit status 1 at the command boundary (``--debug`` shows the
traceback instead); click's usage errors exit 2.
"""

from __future__ import annotations

import click

from durq.backends import DEFAULT_URL
from durq.cli import dashboard, demo, enqueue, jobs, queues, status, transfer, worker
from durq.cli.common import DurqGroup, Env

__all__ = ["main"]


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
    chosen = ctx.get_parameter_source("db_url") is not click.core.ParameterSource.DEFAULT
    ctx.obj = Env(db_url=db_url, debug=debug, db_chosen=chosen)


# Registered here rather than with @main.command() in each module, so the command modules
# never import this one: no import cycle, and the whole command set is listed in one place.
for command in (
    enqueue.enqueue,
    enqueue.produce,
    worker.worker,
    jobs.jobs,
    queues.queues,
    status.workers,
    status.stats,
    transfer.export,
    transfer.import_,
    dashboard.dashboard,
    demo.demo,
):
    main.add_command(command)
