"""What every ``durq`` command shares: its environment, the error boundary, the options.

The top group hands each command an ``Env``; a ``DurqError`` from any command becomes a
``CommandError`` there. Options that several commands take are defined once here, so they
read the same in every command's help.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any

import click
from click.decorators import FC

from durq.backends import connect
from durq.durations import parse_duration
from durq.errors import DurqError, JobNotFound, NoDatabase
from durq.job import CANCELLABLE_STATES, FINISHED_STATES, JobState
from durq.queue import JobQueue

if TYPE_CHECKING:
    from durq.app import App

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
            message = " ".join(str(exc).split()) or type(exc).__name__
            if isinstance(exc, NoDatabase) and isinstance(ctx.obj, Env):
                # Where it looked, whole: a relative path is relative to a directory
                # the reader may not be thinking of.
                message = f"no durq database at {ctx.obj.display_url}; set DURQ_URL or --db"
            raise CommandError(message) from exc


# -- shared state and options ----------------------------------------------------------------


@dataclasses.dataclass
class Env:
    """What the top group hands every command: where the queue is, and a lazy connection."""

    db_url: str
    debug: bool
    db_chosen: bool = True  # given by --db or $DURQ_URL, not durq's default
    _queue: JobQueue | None = None

    @property
    def display_url(self) -> str:
        """Where the queue is, for messages: the SQLite file's absolute path, or PostgreSQL
        without a password."""
        if self.db_url.lower().startswith("sqlite:"):
            from durq.backends.sqlite_connection import parse_url

            return os.path.abspath(parse_url(self.db_url)[0])
        from durq.backends.postgres_connection import describe_url

        return describe_url(self.db_url)

    def queue(self, *, create: bool = True) -> JobQueue:
        """The queue, opened on first use (so ``--help`` never creates a database).

        ``create=False`` for commands that only read: a database that does not exist is
        refused (``NoDatabase``, "no durq database at …") instead of created empty, so a
        mistyped URL is not shown as an empty queue."""
        if self._queue is None:
            self._queue = connect(self.db_url, create=create)
            click.get_current_context().find_root().call_on_close(self._queue.close)
        return self._queue

    def app_queue(self, app: App) -> JobQueue:
        """The queue an app's command uses: ``--db``/``$DURQ_URL`` when given, else the
        app's own URL (so ``durq worker --app tour:app`` finds the app's database)."""
        if self.db_chosen or app.url is None:
            app.url = self.db_url  # with the app's own settings (retry, payload limits)
        click.get_current_context().find_root().call_on_close(app.close)
        return app.queue


def load_app_from_cwd(spec: str) -> App:
    """The ``durq.App`` named ``MOD:APP``, imported from the current directory first."""
    from durq.worker import runners

    import_from_cwd()
    app: App = runners.load_app(spec)
    return app


def import_from_cwd() -> None:
    """Apps and handlers live in the user's project: import from the current directory
    first, as ``python -m`` and rq's and celery's workers do."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())


pass_env = click.make_pass_decorator(Env)

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON for machines instead of a table."
)
wide_option = click.option(
    "--wide",
    is_flag=True,
    help="Every column, whole (full ids), however wide; the table fits the terminal otherwise.",
)


def queue_option(
    help: str, *, default: str | None = None, multiple: bool = False, dest: str = "queue_name"
) -> Callable[[FC], FC]:
    """``--queue``/``-q``, passed as ``dest``; ``help`` says what the queue is for here."""
    return click.option(
        "--queue",
        "-q",
        dest,
        default=default,
        show_default=default is not None,
        multiple=multiple,
        help=help,
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
def log_to_stderr(debug: bool) -> Iterator[None]:
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


# -- jobs as people name and count them ------------------------------------------------------


def resolve_id(env: Env, q: JobQueue, given: str) -> str:
    """The full id of the job whose id starts with ``given`` (``JobQueue.resolve_id``); not
    found names the database looked in, the first thing to doubt when a job is missing."""
    try:
        return q.resolve_id(given)
    except JobNotFound as exc:
        raise JobNotFound(f"{exc} in {env.display_url}") from None


def count_jobs(q: JobQueue, state: str, queue_name: str | None) -> int:
    """How many jobs are in ``state`` (of ``queue_name``, or of every queue) now: the total
    of a progress bar."""
    queues = q.stats()["queues"]
    chosen = [queues.get(queue_name, {})] if queue_name else list(queues.values())
    return sum(int(counts.get(state, 0)) for counts in chosen)
