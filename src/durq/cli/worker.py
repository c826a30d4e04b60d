"""``durq worker``: run jobs with a handler function until stopped."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import click

from durq.cli.common import (
    Env,
    import_from_cwd,
    load_app_from_cwd,
    log_to_stderr,
    pass_env,
    queue_option,
)
from durq.errors import BackendUnavailable
from durq.queue import DEFAULT_LEASE, JobQueue
from durq.worker.outage import Outage
from durq.worker.runtime import DEFAULT_CONCURRENCY
from durq.worker.settler import DEFAULT_WINDOW
from durq.worker.signals import stop_signals


def when_reachable(connect: Callable[[], JobQueue]) -> JobQueue | None:
    """``connect()``, tried again with backoff while the database cannot be reached (not
    when it is wrong: a bad URL or a foreign database ends the worker at once). A worker
    started during an outage waits for the database instead of exiting, so no process
    manager gives up on it. ``None`` if SIGTERM or SIGINT came while it waited."""
    waiting = Outage("worker (starting)")
    stop = threading.Event()
    with stop_signals(lambda signum: stop.set()):
        while not stop.is_set():
            try:
                queue = connect()
            except BackendUnavailable as exc:
                stop.wait(waiting.failed("connecting", exc))
                continue
            waiting.recovered()
            if stop.is_set():  # the signal came while connect() ran: honour it
                queue.close()
                return None
            return queue
    return None


@click.command()
@click.option(
    "--app",
    "app_spec",
    default=None,
    metavar="MOD:APP",
    help="Run the tasks of this durq.App, as package.module:app.",
)
@click.option(
    "--handler",
    "handler_spec",
    default=None,
    metavar="MOD:FUNC",
    help="Or run plain jobs with this handler function, as package.module:function.",
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
@click.option(
    "--batch-window",
    type=click.FloatRange(min=0),
    default=DEFAULT_WINDOW,
    show_default=True,
    help="Seconds an outcome may wait to be written with others; 0 writes each at once.",
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
    app_spec: str | None,
    handler_spec: str | None,
    queues: tuple[str, ...],
    concurrency: int,
    lease: float,
    batch_window: float,
    worker_id: str | None,
    burst: bool,
    max_jobs: int | None,
    grace: float,
) -> None:
    """Run an app's tasks (--app MOD:APP), or plain jobs with a handler (--handler
    MOD:FUNC), up to --concurrency at once.

    With --app, each job runs the task its `task` names; a job whose task the app does not
    have fails that attempt (retried: a newer deploy may have it); the app's periodic tasks
    are scheduled by its workers, each slot once. The app's own database is used unless
    --db or $DURQ_URL says otherwise.

    A handler is a function `handle(job) -> result`: its return value is stored as the
    job's result; an exception fails the attempt (retried with backoff); raising
    `durq.Unprocessable` fails the job for good. Modules are imported from the current
    directory first. An app or handler that cannot be imported stops the worker before it
    claims anything.

    SIGTERM/SIGINT: stop claiming, let running jobs finish within --grace, else release
    them; a second signal releases them at once. Exit 0. A plain function that overruns its
    job's timeout cannot be stopped: the job is failed as timed out, the others finish or
    are released, and the worker exits 3 so its process manager starts a clean one.

    \b
    Examples:
      durq worker --app myapp.tasks:app --concurrency 20
      durq worker --handler durq.demo:apply_transfer --queue default
    """
    from durq.worker import HandlerRunner, Runner, Worker, load_handler

    if (app_spec is None) == (handler_spec is None):
        raise click.UsageError("give --app MOD:APP or --handler MOD:FUNC (one of them)")
    import_from_cwd()
    with log_to_stderr(env.debug):
        # Before connecting: a typo claims nothing.
        if app_spec is not None:
            app = load_app_from_cwd(app_spec)
            runner: Runner = app
            queue = when_reachable(lambda: env.app_queue(app))
        else:
            assert handler_spec is not None
            runner = HandlerRunner(load_handler(handler_spec))
            queue = when_reachable(env.queue)
        if queue is None:
            sys.exit(0)  # told to stop while waiting for the database
        code = Worker(
            queue,
            runner,
            queues=list(queues) or None,
            concurrency=concurrency,
            lease=lease,
            batch_window=batch_window,
            worker_id=worker_id,
            grace=grace,
            burst=burst,
            max_jobs=max_jobs,
        ).run()
    sys.exit(code)
