"""Which database a command uses, and saying so.

Commands that read, or change jobs that must already be there, refuse a database that is not
there (a mistyped ``--db`` or ``$DURQ_URL``) with one line naming where they looked, and make
nothing there; commands that add jobs (enqueue, import, the worker) make it. ``durq stats``
and ``durq workers`` name the database they read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import durq
from durq.cli import main

READ_ONLY = [
    ["stats"],
    ["stats", "--json"],
    ["workers"],
    ["workers", "--json"],
    ["jobs", "list"],
    ["jobs", "list", "--json"],
    ["jobs", "show", "0195f3c4"],
    ["queues", "list"],
    ["export"],
    ["demo", "verify"],
    # They change jobs or queues that a new database could not hold:
    ["jobs", "resubmit", "--state", "unprocessable"],
    ["jobs", "resubmit", "0195f3c4"],
    ["jobs", "cancel", "0195f3c4"],
    ["jobs", "delete", "0195f3c4"],
    ["jobs", "purge", "--older-than", "1d"],
    ["queues", "pause", "mail"],
    ["queues", "resume", "mail"],
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def missing(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """A URL where there is no durq database (a file not there; a PostgreSQL database with
    no durq tables), and how an error names it."""
    if request.param == "sqlite":
        path = tmp_path / "mistyped.db"
        return f"sqlite:///{path}", str(path)
    import pg_support
    from durq.backends.postgres_connection import describe_url

    url = pg_support.empty_database(request)
    return url, describe_url(url)


def nothing_made(url: str, tmp_path: Path) -> bool:
    if url.startswith("sqlite:"):
        return list(tmp_path.iterdir()) == []  # no file, no -wal, no -shm
    import pg_support

    return pg_support.execute(url, "SELECT to_regclass('durq_jobs')") == [(None,)]


def invoke(args: list[str], **env: str) -> Result:
    return CliRunner().invoke(main, args, env=env)


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_refuse_a_missing_database(
    missing: tuple[str, str], tmp_path: Path, command: list[str]
) -> None:
    url, where = missing
    result = invoke(["--db", url, *command])
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: no durq database at {where}; set DURQ_URL or --db\n"
    assert result.stdout == ""
    assert nothing_made(url, tmp_path)


def test_a_mistyped_durq_url_is_refused_with_its_whole_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(["jobs", "list"], DURQ_URL="sqlite:///duqr.db")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no durq database at {tmp_path / 'duqr.db'}; set DURQ_URL or --db\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["enqueue", "1"],
        ["import"],
        ["worker", "--handler", "builtins:repr", "--burst"],
    ],
    ids=" ".join,
)
def test_writing_commands_make_the_database(tmp_path: Path, command: list[str]) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    source = f"sqlite:///{tmp_path}/source.db"
    with durq.connect(source) as other:
        other.enqueue({"n": 1})
    exported = invoke(["--db", source, "export"]).stdout  # what `import` reads
    result = CliRunner().invoke(main, ["--db", url, *command], input=exported)
    assert result.exit_code == 0, result.output
    with durq.connect(url, create=False) as made:  # a durq database now, not just a file
        assert made.stats()["workers"] == 0


def test_stats_and_workers_name_their_database(queue_url: str, queue: durq.JobQueue) -> None:
    from durq.cli.common import Env

    where = Env(db_url=queue_url, debug=False).display_url
    assert where.startswith("/") or "@" in where  # a whole path, or user@host:port/db
    queue.enqueue(1, queue="mail")
    for command in (["stats"], ["workers"]):
        result = invoke(["--db", queue_url, *command])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[0] == f"database: {where}"
    # --json is for machines: its shape stays as documented.
    assert not invoke(["--db", queue_url, "stats", "--json"]).stdout.startswith("database")
