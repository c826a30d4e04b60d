"""``durq jobs``: list, show, resubmit, cancel, delete and purge jobs.

A job is named by its id or a unique start of it (as ``jobs list`` shows it). The commands
that change jobs by id check every id before changing any (``_act_on_ids``); those that go
through many jobs show a progress bar on a terminal (``progress``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta

import click
from rich.table import Table

from durq.cli import detail, fit, progress
from durq.cli import format as fmt
from durq.cli.common import (
    ALL_STATES,
    CANCELLABLE,
    DURATION,
    FINISHED,
    Env,
    count_jobs,
    json_option,
    pass_env,
    queue_option,
    resolve_id,
    wide_option,
)
from durq.errors import DurqError, JobNotFound
from durq.job import CANCELLABLE_STATES, FINISHED_STATES, JobState
from durq.queue import JobQueue


@click.group()
def jobs() -> None:
    """List, inspect, resubmit, cancel and delete jobs."""


@jobs.command("list")
@click.option("--state", type=ALL_STATES, default=None, help="Only jobs in this state.")
@queue_option("Only jobs of this queue.")
@click.option("--task", "task_name", metavar="NAME", default=None, help="Only jobs of this task.")
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
@wide_option
@click.option(
    "--ids", "ids_only", is_flag=True, help="Only the jobs' whole ids, one per line (scripts)."
)
@json_option
@pass_env
def jobs_list(
    env: Env,
    state: str | None,
    queue_name: str | None,
    task_name: str | None,
    limit: int,
    before: str | None,
    wide: bool,
    ids_only: bool,
    as_json: bool,
) -> None:
    """List jobs, newest first.

    On a terminal the table fits its width: ids are shown by their shortest unique start
    (which every command takes), and the last error, times, priority and task give way
    first. Piped, or with --wide, every column is whole.

    \b
    Examples:
      durq jobs list --state unprocessable
      durq jobs list --task tour.send_email --state queued
      ID=$(durq jobs list --state unprocessable --limit 1 --ids)
      durq jobs list --queue mail --limit 100 --json | jq -r '.[].id'
    """
    if ids_only and as_json:
        raise click.UsageError("--ids and --json are two different outputs: give one")
    q = env.queue(create=False)
    if before is not None:
        before = before.strip().lower()
        if len(before) != 36:  # a whole id is a bound as it is, whether or not it exists
            before = resolve_id(env, q, before)
    found = q.list_jobs(state=state, queue=queue_name, limit=limit, before=before, task=task_name)
    if as_json:
        fmt.echo_json([job.to_dict() for job in found])
        return
    if ids_only:
        for job in found:  # nothing at all when there are none, as a script wants
            click.echo(job.id)
        return
    if not found:
        click.echo("no jobs")
        return

    def table(width: int | None) -> Table:
        shown = {} if width is None else q.short_ids(job.id for job in found)
        return fmt.jobs_table(found, shown, width)

    fit.show(table, wide=wide)
    if len(found) == limit:
        click.echo(f"more: add --before {found[-1].id}", err=True)


@jobs.command("show")
@click.argument("job_id", metavar="ID")
@json_option
@pass_env
def jobs_show(env: Env, job_id: str, as_json: bool) -> None:
    """Show one job with its attempt history.

    ID is the job's id or a unique start of it. Errors are shown whole; attempts are
    numbered through resubmits.

    With --json: {"job": {...}, "attempts": [...]}, the job's fields (as in `durq jobs list
    --json`) and its attempt records, oldest first; the same as the dashboard's
    /api/jobs/ID.
    """
    q = env.queue(create=False)
    full = resolve_id(env, q, job_id)
    job = q.get(full)
    history = q.attempts(full)
    if as_json:
        fmt.echo_json({"job": job.to_dict(), "attempts": [a.to_dict() for a in history]})
        return
    fit.show(lambda width: detail.job_detail(job, history))


def _act_on_ids(
    env: Env,
    q: JobQueue,
    given: Sequence[str],
    *,
    verb: str,
    past: str,
    allowed: frozenset[JobState],
    act: Callable[[str], object],
) -> None:
    """Apply ``act`` to every job named (by id or a unique start of one), all or nothing as
    far as the ids go.

    Every id is checked first (it names one job, whose state allows the action); if any
    fails the check, each failure is reported and nothing is changed, so the command can be
    fixed and run again. A job that changes in between (a worker or another admin got there
    first) is reported and the others still happen; the exit status is then 1.
    """
    named = list(dict.fromkeys(given))
    problems: list[str] = []
    ids: list[str] = []
    for text in named:
        try:
            ids.append(resolve_id(env, q, text))
        except DurqError as exc:
            problems.append(str(exc))
    unique = list(dict.fromkeys(ids))  # "0195f3c4" and its whole id are one job
    for job_id in unique:
        try:
            job = q.get(job_id)
        except JobNotFound as exc:  # deleted since it was resolved
            problems.append(str(exc))
            continue
        if job.state not in allowed:
            problems.append(f"cannot {verb} job {job_id}: it is {job.state}")
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        if len(named) > 1:
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
@queue_option("With --state: only this queue.")
@pass_env
def jobs_resubmit(
    env: Env, ids: tuple[str, ...], state: str | None, queue_name: str | None
) -> None:
    """Queue finished jobs again, their attempts reset.

    Give job IDs (or unique starts of them), or --state (usually unprocessable) for every
    job in that state, with a progress bar on a terminal. Every ID is checked first: if one
    is unknown, ambiguous or not finished, each problem is reported and nothing is changed
    (exit 1).

    \b
    Examples:
      durq jobs resubmit 0195f3c4-6f2a-7b1e-9c3d-2a4b5c6d7e8f
      durq jobs resubmit --state unprocessable --queue mail
    """
    _ids_or_state(ids, state, queue_name)
    q = env.queue(create=False)
    if state:
        total = functools.partial(count_jobs, q, state, queue_name)
        with progress.bar(f"resubmitting {state} jobs", total) as bar:
            n = q.resubmit_all(state, queue=queue_name, progress=bar.advance)
        click.echo(f"resubmitted {n} job{'s' * (n != 1)}")
        return
    _act_on_ids(
        env, q, ids, verb="resubmit", past="resubmitted", allowed=FINISHED_STATES, act=q.resubmit
    )


@jobs.command("cancel")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option(
    "--state", type=CANCELLABLE, default=None, help="Cancel every job in this state instead."
)
@queue_option("With --state: only this queue.")
@pass_env
def jobs_cancel(env: Env, ids: tuple[str, ...], state: str | None, queue_name: str | None) -> None:
    """Cancel queued, running or unprocessable jobs.

    A running job's worker stops it when it next renews its lease. Give job IDs (or unique
    starts of them), or --state for every job in that state, with a progress bar on a
    terminal. Every ID is checked first: if one is unknown, ambiguous or in another state,
    each problem is reported and nothing is changed (exit 1).
    """
    _ids_or_state(ids, state, queue_name)
    q = env.queue(create=False)
    if state:
        total = functools.partial(count_jobs, q, state, queue_name)
        with progress.bar(f"cancelling {state} jobs", total) as bar:
            n = q.cancel_all(state, queue=queue_name, progress=bar.advance)
        click.echo(f"cancelled {n} job{'s' * (n != 1)}")
        return
    _act_on_ids(
        env, q, ids, verb="cancel", past="cancelled", allowed=CANCELLABLE_STATES, act=q.cancel
    )


@jobs.command("delete")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@pass_env
def jobs_delete(env: Env, ids: tuple[str, ...]) -> None:
    """Delete finished jobs and their history.

    Only succeeded, unprocessable and cancelled jobs can be deleted. ID is a job's id or a
    unique start of it. Every ID is checked first: if one is unknown, ambiguous or not
    finished, each problem is reported and nothing is changed (exit 1).
    """
    q = env.queue(create=False)
    _act_on_ids(env, q, ids, verb="delete", past="deleted", allowed=FINISHED_STATES, act=q.delete)


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
    batches so workers keep going; a progress bar shows on a terminal.

    \b
    Example:
      durq jobs purge --older-than 7d --state succeeded
    """
    q = env.queue(create=False)
    with progress.bar("purging", lambda: None) as bar:
        n = q.purge(older_than, states=list(states) or None, progress=bar.advance)
    click.echo(f"purged {n} job{'s' * (n != 1)}")
