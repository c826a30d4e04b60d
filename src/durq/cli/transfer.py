"""``durq export`` and ``durq import``: move jobs between databases as JSON lines."""

from __future__ import annotations

import functools
from typing import IO

import click

from durq import codec
from durq.cli import format as fmt
from durq.cli import progress
from durq.cli.common import ALL_STATES, Env, count_jobs, pass_env, queue_option
from durq.errors import InvalidJob
from durq.job import Job, JobState

EXPORT_PAGE = 1000  # the largest page list_jobs serves


@click.command()
@click.option(
    "--state",
    type=ALL_STATES,
    default=JobState.QUEUED.value,
    show_default=True,
    help="Jobs in this state (`durq import` takes queued jobs only).",
)
@queue_option("Only jobs of this queue.")
@pass_env
def export(env: Env, state: str, queue_name: str | None) -> None:
    """Write jobs as JSON lines, for `durq import`.

    One job per line (its --json fields), newest first, to stdout (with a progress bar on
    the terminal when stdout goes to a file or pipe). With `durq import`, this moves a
    queue between databases, ids and all:

    \b
      durq --db sqlite:///durq.db export > jobs.jsonl
      durq --db postgresql://db/durq import jobs.jsonl

    Stop the workers on the old queue first, so no job is run on both.
    """
    q = env.queue(create=False)
    total = functools.partial(count_jobs, q, state, queue_name)
    before: str | None = None
    with progress.bar(f"exporting {state} jobs", total, data_on_stdout=True) as bar:
        while True:
            page = q.list_jobs(state=state, queue=queue_name, limit=EXPORT_PAGE, before=before)
            for job in page:
                click.echo(fmt.json_line(fmt.export_dict(job)))
            bar.advance(len(page))
            if len(page) < EXPORT_PAGE:
                return
            before = page[-1].id


@click.command("import")
@click.argument("source", type=click.File("r"), default="-", metavar="[FILE]")
@pass_env
def import_(env: Env, source: IO[str]) -> None:
    """Add the jobs of a `durq export` file, keeping their ids.

    FILE defaults to stdin. Every line is read and checked before anything is stored;
    then all jobs are added in one transaction (with a progress bar on a terminal). Jobs
    already present are skipped, so an import can be run again safely. Prints how many jobs
    were added.
    """
    found: list[Job] = []
    with progress.bar("reading jobs", lambda: None) as bar:
        for number, line in enumerate(source, start=1):
            bar.advance(1)
            if not line.strip():
                continue
            try:
                data = codec.parse(line, f"line {number}")
            except InvalidJob as exc:
                raise InvalidJob(f"{exc}; nothing was imported") from None
            try:
                found.append(fmt.job_from_dict(data))
            except InvalidJob as exc:
                raise InvalidJob(f"line {number}: {exc}; nothing was imported") from None
        bar.restart("importing jobs", len(found))
        added = env.queue().import_jobs(found, progress=bar.advance) if found else 0
    skipped = len(found) - added
    note = f" ({skipped} already present)" if skipped else ""
    click.echo(f"imported {added} job{'s' * (added != 1)}{note}")
