"""Job ids as people type them: every command that takes one takes a unique start of it.

A start that fits no job, or more than one, is one ``error:`` line and changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import durq
from durq.cli import main


@pytest.fixture
def queue_url(tmp_path: Path) -> str:
    """SQLite only: ``resolve_id`` itself is tested on every backend in tests/contract."""
    return f"sqlite:///{tmp_path}/durq.db"


def durq_cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", url, *args])


def snapshot(q: durq.JobQueue) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Every job and its history, to check that a refused command changed nothing."""
    return [(j.to_dict(), [a.to_dict() for a in q.attempts(j.id)]) for j in q.list_jobs(limit=1000)]


def finished(q: durq.JobQueue, n: int) -> list[durq.Job]:
    """``n`` unprocessable jobs made together: their ids share a long start."""
    jobs = q.enqueue_many(list(range(n)), priority=10)
    for _ in jobs:
        claimed = q.claim("w", lease=60)
        assert claimed is not None
        q.fail(claimed, "ValueError: no", retry=False)
    return [q.get(job.id) for job in jobs]


def shared_start(a: str, b: str) -> str:
    """The start two ids share (which fits both jobs, so names neither)."""
    common = next((a[:n] for n in range(len(a)) if a[n] != b[n]), a)
    assert len(common) >= 8  # made together
    return common


def one_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.output
    return line


@pytest.mark.parametrize("command", ["resubmit", "cancel", "delete"])
def test_a_unique_start_names_the_job(queue_url: str, queue: durq.JobQueue, command: str) -> None:
    job, other = finished(queue, 2)
    short = queue.short_ids([job.id])[job.id]
    result = durq_cli(queue_url, "jobs", command, short)
    assert result.exit_code == 0, result.output
    past = {"resubmit": "resubmitted", "cancel": "cancelled", "delete": "deleted"}[command]
    assert result.stdout == f"{past} {job.id}\n"  # the whole id, for the record
    if command == "delete":
        with pytest.raises(durq.JobNotFound):
            queue.get(job.id)
    else:
        assert queue.get(job.id).state == ("queued" if command == "resubmit" else "cancelled")
    assert queue.get(other.id) == other


def test_jobs_show_takes_a_start_in_any_case(queue_url: str, queue: durq.JobQueue) -> None:
    job, _ = finished(queue, 2)
    short = queue.short_ids([job.id])[job.id]
    for given in (short, short.upper(), job.id):
        result = durq_cli(queue_url, "jobs", "show", given, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["job"]["id"] == job.id


@pytest.mark.parametrize("command", ["show", "resubmit", "cancel", "delete"])
def test_an_ambiguous_start_is_refused_and_changes_nothing(
    queue_url: str, queue: durq.JobQueue, command: str
) -> None:
    a, b = finished(queue, 2)
    before = snapshot(queue)
    start = shared_start(a.id, b.id)
    line = one_error(durq_cli(queue_url, "jobs", command, start))
    assert f"{start} is the start of more than one job's id" in line
    assert a.id in line and b.id in line and line.endswith("give more of it")
    assert snapshot(queue) == before


@pytest.mark.parametrize("command", ["show", "resubmit", "cancel", "delete"])
def test_a_start_of_no_id_is_refused_and_changes_nothing(
    queue_url: str, queue: durq.JobQueue, command: str
) -> None:
    finished(queue, 2)
    before = snapshot(queue)
    line = one_error(durq_cli(queue_url, "jobs", command, "ffff0000"))
    assert line == f"error: no job's id starts ffff0000 in {queue_url.removeprefix('sqlite:///')}"
    assert snapshot(queue) == before


def test_one_ambiguous_id_among_good_ones_changes_nothing(
    queue_url: str, queue: durq.JobQueue
) -> None:
    a, b, c = finished(queue, 3)
    before = snapshot(queue)
    result = durq_cli(queue_url, "jobs", "resubmit", a.id, shared_start(b.id, c.id), c.id)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert "is the start of more than one job's id" in lines[0]
    assert lines[-1] == "error: nothing was changed" and result.stdout == ""
    assert snapshot(queue) == before


def test_a_job_named_twice_is_changed_once(queue_url: str, queue: durq.JobQueue) -> None:
    job, _ = finished(queue, 2)
    short = queue.short_ids([job.id])[job.id]
    result = durq_cli(queue_url, "jobs", "resubmit", short, job.id)
    assert (result.exit_code, result.stdout) == (0, f"resubmitted {job.id}\n")


def test_jobs_list_before_takes_a_start(queue_url: str, queue: durq.JobQueue) -> None:
    ids = [j.id for j in queue.enqueue_many(list(range(5)))]
    short = queue.short_ids([ids[3]])[ids[3]]
    page = durq_cli(queue_url, "jobs", "list", "--before", short, "--json")
    assert page.exit_code == 0, page.output
    assert [d["id"] for d in json.loads(page.stdout)] == [ids[2], ids[1], ids[0]]

    # A whole id is a bound as it stands, even once its job is gone.
    queue.cancel(ids[3])
    queue.delete(ids[3])
    page = durq_cli(queue_url, "jobs", "list", "--before", ids[3], "--json")
    assert [d["id"] for d in json.loads(page.stdout)] == [ids[2], ids[1], ids[0]]

    line = one_error(durq_cli(queue_url, "jobs", "list", "--before", shared_start(*ids[:2])))
    assert "is the start of more than one job's id" in line


def test_jobs_list_ids_prints_whole_ids_one_per_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"
    with durq.connect(url) as queue:
        jobs = queue.enqueue_many([1, 2, 3], queue="mail")
    listed = CliRunner().invoke(main, ["--db", url, "jobs", "list", "--queue", "mail", "--ids"])
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [j.id for j in reversed(jobs)]  # newest first
    none = CliRunner().invoke(main, ["--db", url, "jobs", "list", "--queue", "x", "--ids"])
    assert (none.exit_code, none.stdout) == (0, "")
    both = CliRunner().invoke(main, ["--db", url, "jobs", "list", "--ids", "--json"])
    assert both.exit_code == 2 and "--ids and --json" in both.output
