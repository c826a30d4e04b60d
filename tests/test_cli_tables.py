"""Tables as people see them: on a terminal they fit its width, keeping what matters (ids by
their short unique start, state, queue, attempts); piped, or with --wide, nothing is cut.

Through CliRunner, with rich told it writes to a terminal (``TTY_COMPATIBLE=1``, its
documented switch) of ``COLUMNS`` columns; test_cli_terminal.py does the same on a real
pseudo-terminal.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.cells import cell_len

import durq
from durq.cli import main

LONG_ERROR = "ValueError: the mail server said no " + "and no again " * 20 + "(the end)"
LONG_TASK = "myapp.notifications.tasks.send_the_weekly_digest_email"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def queue_url(tmp_path: Path) -> str:
    """SQLite only: what is shown does not depend on the backend (test_cli_backends.py)."""
    return f"sqlite:///{tmp_path}/durq.db"


def on_terminal(url: str, columns: int, *args: str) -> Result:
    env = {"TTY_COMPATIBLE": "1", "COLUMNS": str(columns), "FORCE_COLOR": None}
    return CliRunner().invoke(main, ["--db", url, *args], env=env)


def piped(url: str, *args: str) -> Result:
    # COLUMNS as a terminal would set it: piped output must not follow it.
    env = {"TTY_COMPATIBLE": None, "FORCE_COLOR": None, "COLUMNS": "80"}
    return CliRunner().invoke(main, ["--db", url, *args], env=env)


def lines_of(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [_ANSI.sub("", line) for line in result.stdout.splitlines()]


def some_jobs(q: durq.JobQueue) -> list[durq.Job]:
    """Jobs made in the same moment (their ids share a long start), one of each state that
    shows something: queued, unprocessable with a long error, a task with a long name."""
    jobs = q.enqueue_many([{"n": n} for n in range(6)], queue="mail")
    jobs += q.enqueue_many([{"n": 9}], queue="reports", task=LONG_TASK, priority=5)
    broken = q.enqueue({"broken": True}, queue="mail", priority=100)
    claimed = q.claim("host-a:42", lease=60)
    assert claimed is not None and claimed.id == broken.id
    jobs.append(q.fail(claimed, f"Traceback (most recent call last):\n{LONG_ERROR}", retry=False))
    return jobs


def row_ids(lines: list[str]) -> list[str]:
    """The first column of each row (below the header and its rule)."""
    return [line.split()[0] for line in lines[2:] if line.strip()]


@pytest.mark.parametrize("columns", [80, 160])
def test_jobs_list_fits_the_terminal_and_its_ids_resolve(
    queue_url: str, queue: durq.JobQueue, columns: int
) -> None:
    jobs = some_jobs(queue)
    lines = lines_of(on_terminal(queue_url, columns, "jobs", "list"))
    assert all(cell_len(line) <= columns for line in lines), "\n".join(lines)
    header = lines[0].split()
    for name in ("ID", "QUEUE", "STATE", "ATTEMPTS"):
        assert name in header
    shown = row_ids(lines)
    assert len(shown) == len(jobs)  # one row per job
    full = {job.id for job in jobs}
    for short in shown:
        assert 8 <= len(short) < 36 and "…" not in short
        [whole] = [i for i in full if i.startswith(short)]  # a unique start of one job's id
        detail = on_terminal(queue_url, columns, "jobs", "show", short)
        assert detail.exit_code == 0, detail.output
        assert whole in detail.stdout
    assert any(short[8:] for short in shown)  # made in the same moment: more than 8 shown
    text = "\n".join(lines)
    assert "unprocessable" in text and "reports" in text and "1/5" in text


def test_narrow_terminals_lose_the_lower_value_columns_first(
    queue_url: str, queue: durq.JobQueue
) -> None:
    some_jobs(queue)
    narrow = lines_of(on_terminal(queue_url, 80, "jobs", "list"))[0]
    wide = lines_of(on_terminal(queue_url, 160, "jobs", "list"))[0]
    for gone in ("LAST ERROR", "UPDATED", "RUN AT"):
        assert gone not in narrow
    assert "UPDATED (UTC)" in wide and "LAST ERROR" in wide
    # At 160 the last error is there, cut to fit with "…", not wrapped onto more lines.
    rows = lines_of(on_terminal(queue_url, 160, "jobs", "list"))
    [broken] = [row for row in rows if "unprocessable" in row]
    assert "ValueError: the ma" in broken and broken.rstrip().endswith("…")
    # The task is cut at its start, keeping the function's name.
    [task] = [word for row in rows if "reports" in row for word in row.split() if "…" in word]
    assert task.startswith("…") and LONG_TASK.endswith(task[1:]) and len(task) >= 20


def test_piped_jobs_list_cuts_nothing(queue_url: str, queue: durq.JobQueue) -> None:
    jobs = some_jobs(queue)
    lines = lines_of(piped(queue_url, "jobs", "list"))
    assert len(lines) == 2 + len(jobs)  # header, rule, one line per job
    assert sorted(row_ids(lines)) == sorted(job.id for job in jobs)  # whole ids
    text = "\n".join(lines)
    assert LONG_ERROR in text and LONG_TASK in text
    assert "…" not in text and "\x1b" not in text
    assert max(cell_len(line) for line in lines) > 160  # the width of the data, not of COLUMNS


def test_wide_on_a_terminal_shows_every_column_whole(queue_url: str, queue: durq.JobQueue) -> None:
    jobs = some_jobs(queue)
    lines = lines_of(on_terminal(queue_url, 80, "jobs", "list", "--wide"))
    header = lines[0]
    for name in ("ID", "QUEUE", "TASK", "STATE", "PRI", "ATTEMPTS", "RUN AT", "UPDATED"):
        assert name in header
    assert "LAST ERROR" in header
    assert sorted(row_ids(lines)) == sorted(job.id for job in jobs)
    assert LONG_ERROR in "\n".join(lines)


def test_workers_show_pid_started_and_the_job_by_its_short_id(
    queue_url: str, queue: durq.JobQueue
) -> None:
    job = queue.enqueue({"n": 1}, queue="mail")
    queue.enqueue_many([{"n": n} for n in range(3)], queue="mail")  # ids that share a start
    queue.worker_heartbeat("mailer", host="host-a", pid=4242, queues=["mail"])
    claimed = queue.claim("mailer", queues=["mail"], lease=60)
    assert claimed is not None and claimed.id == job.id

    lines = lines_of(on_terminal(queue_url, 80, "workers"))
    # The database's path, however long, on one line: the terminal wraps it, not durq.
    assert lines[0] == f"database: {queue_url.removeprefix('sqlite:///')}"
    assert all(cell_len(line) <= 80 for line in lines[1:]), "\n".join(lines)
    header = lines[1].split()
    for name in ("ID", "PID", "STARTED", "JOB"):
        assert name in header
    [row] = [line.split() for line in lines[3:] if line.strip()]
    assert row[0] == "mailer" and "4242" in row
    assert "ago" in row  # STARTED: how long ago, e.g. "0.3s ago"
    short = row[-1]
    assert len(short) < 36 and job.id.startswith(short)
    assert job.id in on_terminal(queue_url, 80, "jobs", "show", short).stdout

    # The same worker id restarted (a fixed --worker-id): the new process's PID shows.
    queue.worker_heartbeat("mailer", host="host-a", pid=5151, queues=["mail"])
    [row] = [line.split() for line in lines_of(on_terminal(queue_url, 80, "workers"))[3:]]
    assert row[0] == "mailer" and "5151" in row and "4242" not in row

    whole = lines_of(piped(queue_url, "workers"))
    assert job.id in whole[-1] and "STARTED (UTC)" in whole[1]


@pytest.mark.parametrize("command", [["stats"], ["queues", "list"]])
def test_queue_tables_fit_80_columns(
    queue_url: str, queue: durq.JobQueue, command: list[str]
) -> None:
    for name in ("default", "mail", "a-rather-long-queue-name-for-reports"):
        queue.enqueue(1, queue=name)
    queue.pause("mail")
    lines = lines_of(on_terminal(queue_url, 80, *command))
    table = lines[2:] if command == ["stats"] else lines  # below stats' database and heading
    assert all(cell_len(line) <= 80 for line in table), "\n".join(lines)
    text = "\n".join(lines)
    for state in durq.JobState:
        assert state.value.upper() in text
    assert "paused" in text and "QUEUE" in text
    whole = "\n".join(lines_of(piped(queue_url, *command)))
    assert "a-rather-long-queue-name-for-reports" in whole and "OLDEST WAIT" in whole


@pytest.mark.parametrize("width", [50, 64, 80, 100, 120, 160, 200])
def test_a_fitted_table_is_as_wide_as_it_may_be_and_keeps_what_must_stay(width: int) -> None:
    from rich.console import Console
    from rich.text import Text

    from durq.cli import fit

    ids = [f"01a225e2-a2f0-700{n}" for n in range(3)]
    columns = [
        fit.Column("ID", [Text(i) for i in ids]),
        fit.Column("TASK", [Text("x" * 40)] * 3, rank=4, cut_rank=2, shrink_to=10, keep_end=True),
        fit.Column("STATE", [Text("unprocessable")] * 3),
        fit.Column("WHEN", [Text("2026-11-29 05:58:59")] * 3, rank=3),
        fit.Column("ERROR", [Text("e" * 300)] * 3, rank=2, cut_rank=1, shrink_to=20),
    ]
    console = Console(width=10_000, file=io.StringIO())
    console.print(fit.table(columns, width))
    lines = console.file.getvalue().splitlines()
    printed = max(cell_len(line) for line in lines)
    required = len(ids[0]) + len("unprocessable") + 2 * 2 + 1
    assert printed <= max(width, required)
    if "ERROR" in lines[0]:
        assert printed == width  # the error, cut, takes the room there is
    else:
        assert "TASK" in lines[0]  # the error goes before the task does
    for i in ids:  # never cut
        assert any(i in line for line in lines)
