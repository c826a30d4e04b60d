"""``durq worker``: run jobs with a handler function until stopped."""

from __future__ import annotations

import os
import sys

import click

from durq.cli.common import Env, log_to_stderr, pass_env, queue_option
from durq.queue import DEFAULT_LEASE
from durq.worker.runtime import DEFAULT_CONCURRENCY


@click.command()
@click.option(
    "--handler",
    "handler_spec",
    required=True,
    metavar="MOD:FUNC",
    help="The handler function, as package.module:function.",
)
@queue_option(
    "A queue to take jobs from; repeat for several (default: every queue).",
    multiple=True,
    dest="queues",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1, max=1000),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Jobs run at once: threads for plain functions, one event loop for async ones.",
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
    help="On SIGTERM, seconds running jobs may take before they are released.",
)
@pass_env
def worker(
    env: Env,
    handler_spec: str,
    queues: tuple[str, ...],
    concurrency: int,
    lease: float,
    worker_id: str | None,
    burst: bool,
    max_jobs: int | None,
    grace: float,
) -> None:
    """Run jobs with the handler MOD:FUNC, up to --concurrency at once.

    The handler is a function `handle(job) -> result`: its return value is stored as the
    job's result; an exception fails the attempt (retried with backoff); raising
    `durq.Unprocessable` fails the job for good. Modules are imported from the current
    directory first. A handler that cannot be imported stops the worker before it claims
    anything.

    SIGTERM/SIGINT: stop claiming, let running jobs finish within --grace, else release
    them; a second signal releases them at once. Exit 0. A plain function that overruns its
    job's timeout cannot be stopped: the job is failed as timed out, the others finish or
    are released, and the worker exits 3 so its process manager starts a clean one.

    \b
    Example:
      durq worker --handler durq.demo:apply_transfer --queue default
    """
    from durq.worker import Worker, load_handler

    # Handlers live in the user's project: import from the current directory first, as
    # `python -m` and rq's and celery's workers do.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    with log_to_stderr(env.debug):
        handler = load_handler(handler_spec)  # before connecting: a typo claims nothing
        runner = Worker(
            env.queue(),
            handler,
            queues=list(queues) or None,
            concurrency=concurrency,
            lease=lease,
            worker_id=worker_id,
            grace=grace,
            burst=burst,
            max_jobs=max_jobs,
        )
        code = runner.run()
    sys.exit(code)
