"""``durq jobs show``: errors in full, attempts numbered across resubmits, and a job's
current error only while it has one (a succeeded job's earlier failures are history)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import durq
from durq.cli import main

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/tasks.py", line 12, in send\n'
    "    smtp.send(message)\n"
    "ConnectionError: the mail server hung up " + "after a long wait " * 12 + "(the end)"
)
_SUMMARY = re.compile(r"^\s*(\d+) (\w+) · worker (\S+) · started ")
QUICK = durq.RetryPolicy(base=0.001, cap=0.001, jitter=0)
_RED = re.compile(r"\x1b\[(?:[0-9;]*;)?31(?:;[0-9;]*)?m")  # any SGR that turns text red


@pytest.fixture
def queue_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/durq.db"


def show(url: str, job_id: str, *, terminal: bool = False) -> Result:
    env = {"TTY_COMPATIBLE": "1" if terminal else "0", "COLUMNS": "100", "NO_COLOR": None}
    result = CliRunner().invoke(main, ["--db", url, "jobs", "show", job_id], env=env)
    assert result.exit_code == 0, result.output
    return result


def attempt_lines(result: Result) -> list[tuple[int, str, str]]:
    """(number, outcome, worker) of each attempt, in the order shown."""
    history = result.stdout.split("\nattempts\n", 1)[1]
    return [(int(m[1]), m[2], m[3]) for line in history.splitlines() if (m := _SUMMARY.match(line))]


def run_once(q: durq.JobQueue, worker: str, error: str | None, retry: bool = True) -> durq.Job:
    claimed = q.claim(worker, lease=60)
    assert claimed is not None
    if error is None:
        return q.complete(claimed, {"sent": True})
    return q.fail(claimed, error, retry=retry)


def test_every_error_is_shown_whole(queue_url: str, queue: durq.JobQueue) -> None:
    job = queue.enqueue({"to": "ada"}, max_attempts=1)
    run_once(queue, "w1", TRACEBACK, retry=False)
    out = show(queue_url, job.id).stdout
    history = [line[2:].rstrip() for line in out.split("\nattempts\n", 1)[1].splitlines()]
    first = history.index(TRACEBACK.splitlines()[0])
    assert history[first : first + 4] == TRACEBACK.splitlines()  # under its attempt, whole
    assert "…" not in out


def test_a_succeeded_job_has_no_current_error_but_keeps_its_history(
    queue_url: str, queue: durq.JobQueue
) -> None:
    job = queue.enqueue({"to": "ada"}, retry=QUICK)
    run_once(queue, "w1", TRACEBACK)
    time.sleep(0.01)  # the retry's backoff
    run_once(queue, "w2", None)
    assert queue.get(job.id).state == "succeeded"

    result = show(queue_url, job.id)
    fields = result.stdout.split("\nattempts\n", 1)[0]
    assert "last error" not in fields and "ConnectionError" not in fields
    assert attempt_lines(result) == [(1, "failed", "w1"), (2, "succeeded", "w2")]
    assert "ConnectionError: the mail server hung up" in result.stdout  # in the history

    on_screen = show(queue_url, job.id, terminal=True).stdout
    heading = on_screen.index("attempts\x1b")  # the bold "attempts" heading
    assert not _RED.search(on_screen[:heading]), on_screen[:heading]


def test_an_unprocessable_job_shows_its_error_in_red(queue_url: str, queue: durq.JobQueue) -> None:
    job = queue.enqueue({"to": "ada"}, max_attempts=1)
    run_once(queue, "w1", TRACEBACK, retry=False)
    fields = show(queue_url, job.id).stdout.split("\nattempts\n", 1)[0]
    assert re.search(r"last error\s+ConnectionError: the mail server hung up", fields)
    on_screen = show(queue_url, job.id, terminal=True).stdout
    assert _RED.search(on_screen.split("attempts\x1b", 1)[0])


def test_attempts_are_numbered_across_resubmits(queue_url: str, queue: durq.JobQueue) -> None:
    job = queue.enqueue({"to": "ada"}, max_attempts=1)
    run_once(queue, "w1", "ValueError: first", retry=False)
    queue.resubmit(job.id)
    run_once(queue, "w2", "ValueError: second", retry=False)
    queue.resubmit(job.id)
    run_once(queue, "w3", None)

    result = show(queue_url, job.id)
    assert attempt_lines(result) == [
        (1, "unprocessable", "w1"),
        (2, "unprocessable", "w2"),
        (3, "succeeded", "w3"),
    ]
    history = [line.rstrip() for line in result.stdout.split("\nattempts\n", 1)[1].splitlines()]
    marks = [i for i, line in enumerate(history) if line.strip() == "resubmitted"]
    starts = [i for i, line in enumerate(history) if _SUMMARY.match(line)]
    assert len(marks) == 2
    assert starts[0] < marks[0] < starts[1] < marks[1] < starts[2]  # each before its attempt
    # Each attempt's own error under it.
    assert history.index("  ValueError: first") < starts[1]
    assert starts[1] < history.index("  ValueError: second") < starts[2]


def test_a_job_never_resubmitted_has_no_mark(queue_url: str, queue: durq.JobQueue) -> None:
    job = queue.enqueue({"to": "ada"}, max_attempts=2, retry=QUICK)
    run_once(queue, "w1", "ValueError: first")
    time.sleep(0.01)
    run_once(queue, "w1", "ValueError: second", retry=False)
    result = show(queue_url, job.id)
    assert attempt_lines(result) == [(1, "failed", "w1"), (2, "unprocessable", "w1")]
    assert "resubmitted" not in result.stdout
