"""The ``durq`` command line, through click's CliRunner (and real processes where signals or
tracebacks matter). Every error path checks that it changed nothing."""

from __future__ import annotations

import dataclasses
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import durq
from durq.cli import common as cli_common
from durq.cli import enqueue as cli_enqueue
from durq.cli import main
from durq.cli import transfer as cli_transfer
from durq.durations import parse_duration

JOB_FIELDS = {f.name for f in dataclasses.fields(durq.Job) if f.metadata.get("json", True)}
ATTEMPT_FIELDS = {f.name for f in dataclasses.fields(durq.Attempt)}
WORKER_FIELDS = {f.name for f in dataclasses.fields(durq.WorkerInfo)}

Run = Callable[..., Result]


@pytest.fixture
def queue_url(tmp_path: Path) -> str:
    """SQLite only, overriding conftest's every-backend fixture: the CLI talks to ``JobQueue``
    alone, and test_cli_backends.py runs its end-to-end paths against every backend."""
    return f"sqlite:///{tmp_path}/durq.db"


@pytest.fixture
def run(queue_url: str) -> Run:
    """Run ``durq --db <queue_url> ARGS...``; stdout and stderr are kept apart."""

    def invoke(*args: str, input: str | None = None, db: str | None = None) -> Result:
        return CliRunner().invoke(main, ["--db", db or queue_url, *args], input=input)

    return invoke


def make_job(q: durq.JobQueue, state: str, queue: str = "default", **options: Any) -> durq.Job:
    """A job of ``queue`` in ``state``, made through the worker API as a real one would be."""
    if state == "queued":
        return q.enqueue({"made": state}, queue=queue, **options)
    # Ahead of every plainly queued job, so the claim below takes this one.
    job = q.enqueue({"made": state}, queue=queue, priority=1000, **options)
    if state == "cancelled":
        return q.cancel(job.id)
    claimed = q.claim("test-worker", queues=[queue], lease=60)
    assert claimed is not None and claimed.id == job.id
    if state == "running":
        return claimed
    if state == "succeeded":
        return q.complete(claimed, {"ok": True})
    if state == "unprocessable":
        return q.fail(claimed, "Traceback …\nValueError: broken on purpose", retry=False)
    raise AssertionError(state)


def error_line(result: Result) -> str:
    """The one ``error:`` line a failed command prints; asserts there is exactly one."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def all_jobs(q: durq.JobQueue) -> list[durq.Job]:
    return q.list_jobs(limit=1000)


# -- enqueue ---------------------------------------------------------------------------------


def test_enqueue_prints_the_id_and_stores_the_options(run: Run, queue: durq.JobQueue) -> None:
    result = run(
        "enqueue",
        "--queue",
        "mail",
        "--priority",
        "7",
        "--delay",
        "60",
        "--max-attempts",
        "2",
        "--timeout",
        "9.5",
        '{"to": "ada@example.com"}',
    )
    assert result.exit_code == 0, result.output
    job = queue.get(result.stdout.strip())
    assert job.payload == {"to": "ada@example.com"}
    assert (job.queue, job.priority, job.max_attempts, job.timeout) == ("mail", 7, 2, 9.5)
    assert job.run_at - job.created_at >= timedelta(seconds=59)


def test_enqueue_with_a_dedupe_key_returns_the_live_job(run: Run, queue: durq.JobQueue) -> None:
    first = run("enqueue", "--dedupe-key", "k1", "1")
    second = run("enqueue", "--dedupe-key", "k1", "2")
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout
    assert len(all_jobs(queue)) == 1


def test_enqueue_json_prints_the_job(run: Run) -> None:
    result = run("enqueue", "--json", "[1, 2]")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) == JOB_FIELDS
    assert data["payload"] == [1, 2] and data["state"] == "queued"
    assert data["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{not json"], "PAYLOAD is not JSON"),
        (["NaN"], "not JSON"),
        (["--queue", "bad name!", "1"], "bad queue name"),
        (["--max-attempts", "0", "1"], "max_attempts"),
        (["--delay", "-5", "1"], "delay"),
    ],
)
def test_enqueue_bad_input_is_one_error_and_stores_nothing(
    run: Run, queue: durq.JobQueue, args: list[str], message: str
) -> None:
    result = run("enqueue", *args)
    assert result.exit_code == 1
    assert message in error_line(result)
    assert result.stdout == ""
    assert all_jobs(queue) == []


def test_enqueue_stdin_one_job_per_line(run: Run, queue: durq.JobQueue) -> None:
    lines = ['{"n": 1}', "", "[2]", '"three"', "  ", "4"]
    result = run("enqueue", "--queue", "bulk", "--priority", "3", "-", input="\n".join(lines))
    assert result.exit_code == 0, result.output
    ids = result.stdout.split()
    assert len(ids) == 4
    stored = [queue.get(i) for i in ids]
    assert [j.payload for j in stored] == [{"n": 1}, [2], "three", 4]
    assert {(j.queue, j.priority) for j in stored} == {("bulk", 3)}


def test_enqueue_stdin_bad_line_names_it_and_stores_nothing_of_its_batch(
    run: Run, queue: durq.JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_enqueue, "ENQUEUE_BATCH", 2)
    lines = ["1", "2", "3", "{bad", "5"]
    result = run("enqueue", "-", input="\n".join(lines) + "\n")
    assert result.exit_code == 1
    line = error_line(result)
    assert "line 4 is not JSON" in line
    assert "nothing from line 3 on was stored" in line
    # The first batch (lines 1-2) was committed and its ids printed; lines 3-5 were not.
    assert sorted(j.payload for j in all_jobs(queue)) == [1, 2]
    assert len(result.stdout.split()) == 2


def test_enqueue_stdin_bad_line_in_the_only_batch_stores_nothing(
    run: Run, queue: durq.JobQueue
) -> None:
    result = run("enqueue", "-", input='{"n": 1}\n{"n": 2}\n{"n": \n{"n": 4}\n')
    assert result.exit_code == 1
    assert "line 3 is not JSON" in error_line(result)
    assert all_jobs(queue) == []


def test_enqueue_stdin_oversize_line_is_named(run: Run, queue: durq.JobQueue) -> None:
    big = json.dumps("x" * (queue.settings.max_payload_bytes + 1))
    result = run("enqueue", "-", input=f"1\n{big}\n")
    assert result.exit_code == 1
    assert "line 2: the payload is" in error_line(result)
    assert all_jobs(queue) == []


def test_enqueue_stdin_refuses_a_dedupe_key(run: Run, queue: durq.JobQueue) -> None:
    result = run("enqueue", "--dedupe-key", "k", "-", input="1\n")
    assert result.exit_code == 2
    assert "--dedupe-key" in result.stderr
    assert all_jobs(queue) == []


# -- jobs list / show ------------------------------------------------------------------------


def test_jobs_list_table_and_json(run: Run, queue: durq.JobQueue) -> None:
    a = make_job(queue, "queued", queue="a")
    b = make_job(queue, "unprocessable", queue="b")
    table = run("jobs", "list")
    assert table.exit_code == 0
    assert a.id in table.stdout and b.id in table.stdout
    assert "ValueError: broken on purpose" in table.stdout  # the useful line of the error

    as_json = run("jobs", "list", "--json")
    data = json.loads(as_json.stdout)
    assert [d["id"] for d in data] == [b.id, a.id]  # newest first
    assert all(set(d) == JOB_FIELDS for d in data)

    only_b = json.loads(run("jobs", "list", "--state", "unprocessable", "--json").stdout)
    assert [d["id"] for d in only_b] == [b.id]
    only_a = json.loads(run("jobs", "list", "--queue", "a", "--json").stdout)
    assert [d["id"] for d in only_a] == [a.id]


def test_jobs_list_pages_with_before(run: Run, queue: durq.JobQueue) -> None:
    ids = [queue.enqueue(n).id for n in range(5)]
    first = run("jobs", "list", "--limit", "2")
    assert f"--before {ids[3]}" in first.stderr  # the hint for the next page
    page = json.loads(run("jobs", "list", "--limit", "2", "--before", ids[3], "--json").stdout)
    assert [d["id"] for d in page] == [ids[2], ids[1]]


def test_jobs_list_empty(run: Run, queue: durq.JobQueue) -> None:
    result = run("jobs", "list")
    assert (result.exit_code, result.stdout.strip()) == (0, "no jobs")
    assert json.loads(run("jobs", "list", "--json").stdout) == []


@pytest.mark.parametrize("args", [["--state", "finished"], ["--limit", "0"], ["--limit", "x"]])
def test_jobs_list_usage_errors_exit_2(run: Run, args: list[str]) -> None:
    result = run("jobs", "list", *args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr


def test_jobs_list_bad_queue_name_is_an_error(run: Run, queue: durq.JobQueue) -> None:
    result = run("jobs", "list", "--queue", "no spaces")
    assert result.exit_code == 1
    assert "bad queue name" in error_line(result)


def test_jobs_show_with_history(run: Run, queue: durq.JobQueue) -> None:
    job = make_job(queue, "unprocessable", max_attempts=3)
    result = run("jobs", "show", job.id)
    assert result.exit_code == 0
    for text in (job.id, "unprocessable", "test-worker", "ValueError: broken on purpose"):
        assert text in result.stdout

    data = json.loads(run("jobs", "show", job.id, "--json").stdout)
    assert set(data) == {"job", "attempts"}  # the shape of the dashboard's /api/jobs/ID
    assert set(data["job"]) == JOB_FIELDS
    assert data["job"]["attempts"] == 1 and data["job"]["max_attempts"] == 3
    [attempt] = data["attempts"]
    assert set(attempt) == ATTEMPT_FIELDS
    assert (attempt["job_id"], attempt["outcome"]) == (job.id, "unprocessable")
    assert attempt["started_at"].endswith("Z")


def test_jobs_show_markup_in_payload_is_shown_as_text(run: Run, queue: durq.JobQueue) -> None:
    job = queue.enqueue({"note": "[bold]not markup[/bold]"})
    assert "[bold]not markup[/bold]" in run("jobs", "show", job.id).stdout


def test_jobs_show_unknown_id(run: Run, queue: durq.JobQueue, queue_url: str) -> None:
    where = queue_url.removeprefix("sqlite:///")
    result = run("jobs", "show", "0000abcd")
    assert result.exit_code == 1
    assert error_line(result) == f"error: no job's id starts 0000abcd in {where}"
    result = run("jobs", "show", "nope")
    assert result.exit_code == 1
    assert "'nope' is not a job id or the start of one" in error_line(result)


# -- resubmit / cancel / delete --------------------------------------------------------------


def test_resubmit_ids(run: Run, queue: durq.JobQueue) -> None:
    a = make_job(queue, "unprocessable")
    b = make_job(queue, "succeeded")
    result = run("jobs", "resubmit", a.id, b.id, a.id)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"resubmitted {a.id}", f"resubmitted {b.id}"]
    for job_id in (a.id, b.id):
        again = queue.get(job_id)
        assert (again.state, again.attempts, again.last_error) == ("queued", 0, None)


def test_resubmit_wrong_state(run: Run, queue: durq.JobQueue) -> None:
    job = make_job(queue, "running")
    result = run("jobs", "resubmit", job.id)
    assert result.exit_code == 1
    assert error_line(result) == f"error: cannot resubmit job {job.id}: it is running"
    assert queue.get(job.id) == job


def test_resubmit_with_one_bad_id_changes_nothing(
    run: Run, queue: durq.JobQueue, queue_url: str
) -> None:
    good = make_job(queue, "unprocessable")
    queued = make_job(queue, "queued")
    result = run("jobs", "resubmit", good.id, "0000abcd", queued.id, "missing")
    assert result.exit_code == 1
    where = queue_url.removeprefix("sqlite:///")
    assert result.stderr.splitlines() == [
        f"error: no job's id starts 0000abcd in {where}",
        "error: 'missing' is not a job id or the start of one (4 to 36 hex digits and dashes)",
        f"error: cannot resubmit job {queued.id}: it is queued",
        "error: nothing was changed",
    ]
    assert result.stdout == ""
    assert queue.get(good.id) == good


def test_a_job_that_changes_after_the_check_is_reported_and_the_rest_done(
    run: Run, queue: durq.JobQueue, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raced = make_job(queue, "unprocessable")
    other = make_job(queue, "unprocessable")

    def connect_with_a_rival(url: str, **settings: Any) -> durq.JobQueue:
        opened = durq.connect(url, **settings)
        resubmit = opened.resubmit

        def rival_first(job_id: str) -> durq.Job:
            if job_id == raced.id:
                queue.resubmit(job_id)  # another admin, between the check and the action
            return resubmit(job_id)

        monkeypatch.setattr(opened, "resubmit", rival_first)
        return opened

    monkeypatch.setattr(cli_common, "connect", connect_with_a_rival)
    result = run("jobs", "resubmit", raced.id, other.id)
    assert result.exit_code == 1
    assert error_line(result) == f"error: cannot resubmit job {raced.id}: it is queued"
    assert result.stdout.strip() == f"resubmitted {other.id}"
    assert queue.get(other.id).state == "queued"


def test_resubmit_state_in_bulk(run: Run, queue: durq.JobQueue) -> None:
    mail = [make_job(queue, "unprocessable", queue="mail") for _ in range(3)]
    other = make_job(queue, "unprocessable", queue="other")
    done = make_job(queue, "succeeded", queue="mail")

    result = run("jobs", "resubmit", "--state", "unprocessable", "--queue", "mail")
    assert (result.exit_code, result.stdout.strip()) == (0, "resubmitted 3 jobs")
    assert {queue.get(j.id).state for j in mail} == {"queued"}
    assert queue.get(other.id).state == "unprocessable"
    assert queue.get(done.id).state == "succeeded"

    result = run("jobs", "resubmit", "--state", "unprocessable")
    assert result.stdout.strip() == "resubmitted 1 job"
    assert queue.get(other.id).state == "queued"


@pytest.mark.parametrize(
    "args",
    [
        [],  # neither ids nor --state
        ["someid", "--state", "unprocessable"],  # both
        ["someid", "--queue", "mail"],  # --queue without --state
        ["--state", "queued"],  # not a finished state
    ],
)
def test_resubmit_usage_errors(run: Run, queue: durq.JobQueue, args: list[str]) -> None:
    job = make_job(queue, "unprocessable")
    result = run("jobs", "resubmit", *args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr
    assert queue.get(job.id) == job


def test_cancel_ids_and_wrong_state(run: Run, queue: durq.JobQueue) -> None:
    queued = make_job(queue, "queued")
    broken = make_job(queue, "unprocessable")
    result = run("jobs", "cancel", queued.id, broken.id)
    assert result.exit_code == 0
    assert {queue.get(queued.id).state, queue.get(broken.id).state} == {"cancelled"}

    done = make_job(queue, "succeeded")
    result = run("jobs", "cancel", done.id)
    assert result.exit_code == 1
    assert error_line(result) == f"error: cannot cancel job {done.id}: it is succeeded"
    assert queue.get(done.id) == done

    running = make_job(queue, "running")
    assert run("jobs", "cancel", running.id).exit_code == 0
    assert queue.get(running.id).state == "cancelled"


def test_cancel_state_in_bulk(run: Run, queue: durq.JobQueue) -> None:
    mail = [make_job(queue, "queued", queue="mail") for _ in range(2)]
    other = make_job(queue, "queued", queue="other")
    result = run("jobs", "cancel", "--state", "queued", "--queue", "mail")
    assert (result.exit_code, result.stdout.strip()) == (0, "cancelled 2 jobs")
    assert {queue.get(j.id).state for j in mail} == {"cancelled"}
    assert queue.get(other.id).state == "queued"
    assert run("jobs", "cancel", "--state", "succeeded").exit_code == 2


def test_delete(run: Run, queue: durq.JobQueue) -> None:
    done = make_job(queue, "succeeded")
    queued = make_job(queue, "queued")
    result = run("jobs", "delete", done.id, queued.id)
    assert result.exit_code == 1
    assert f"error: cannot delete job {queued.id}: it is queued" in result.stderr
    assert queue.get(done.id) == done  # nothing changed

    result = run("jobs", "delete", done.id)
    assert (result.exit_code, result.stdout.strip()) == (0, f"deleted {done.id}")
    with pytest.raises(durq.JobNotFound):
        queue.get(done.id)
    assert run("jobs", "delete").exit_code == 2


def test_delete_unknown_id(run: Run, queue: durq.JobQueue) -> None:
    done = make_job(queue, "succeeded")
    result = run("jobs", "delete", "0000abcd")
    assert result.exit_code == 1
    assert error_line(result).startswith("error: no job's id starts 0000abcd in ")
    assert queue.get(done.id) == done


# -- purge and durations ---------------------------------------------------------------------


def test_purge(run: Run, queue: durq.JobQueue) -> None:
    done = make_job(queue, "succeeded")
    broken = make_job(queue, "unprocessable")
    queued = make_job(queue, "queued")

    result = run("jobs", "purge", "--older-than", "7d")
    assert (result.exit_code, result.stdout.strip()) == (0, "purged 0 jobs")
    time.sleep(0.01)
    result = run("jobs", "purge", "--older-than", "0s", "--state", "succeeded")
    assert result.stdout.strip() == "purged 1 job"
    assert {j.id for j in all_jobs(queue)} == {broken.id, queued.id}
    result = run("jobs", "purge", "--older-than", "0s")
    assert result.stdout.strip() == "purged 1 job"
    assert [j.id for j in all_jobs(queue)] == [queued.id]
    assert done.id not in run("jobs", "list").stdout


@pytest.mark.parametrize("bad", ["7x", "-1d", "", "d", "7", "1.d", "1d-2h", "10e3s"])
def test_purge_bad_duration_is_a_usage_error(run: Run, queue: durq.JobQueue, bad: str) -> None:
    done = make_job(queue, "succeeded")
    result = run("jobs", "purge", "--older-than", bad)
    assert result.exit_code == 2
    assert "Invalid value for '--older-than'" in result.stderr
    assert "like 30s, 15m, 2h, 7d" in result.stderr
    assert queue.get(done.id) == done


def test_purge_needs_older_than_and_a_finished_state(run: Run) -> None:
    assert run("jobs", "purge").exit_code == 2
    assert run("jobs", "purge", "--older-than", "1d", "--state", "queued").exit_code == 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), ("1w", 604800), ("1h30m", 5400),
     ("1.5h", 5400), ("0s", 0), (" 2D ", 172800)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_parse_duration_refuses_overflow() -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration("99999999999w")


# -- queues, workers, stats ------------------------------------------------------------------


def test_queues_pause_and_resume_show_in_queues_list(run: Run, queue: durq.JobQueue) -> None:
    make_job(queue, "queued", queue="mail")
    assert run("queues", "list").stdout.count("paused") == 0
    result = run("queues", "pause", "mail")
    assert (result.exit_code, result.stdout.strip()) == (0, "paused queue mail")
    assert "paused" in run("queues", "list").stdout
    [entry] = json.loads(run("queues", "list", "--json").stdout)
    assert (entry["name"], entry["paused"], entry["queued"]) == ("mail", True, 1)
    assert queue.claim("w", queues=["mail"]) is None

    assert run("queues", "resume", "mail").stdout.strip() == "resumed queue mail"
    [entry] = json.loads(run("queues", "list", "--json").stdout)
    assert entry["paused"] is False
    assert "paused" not in run("queues", "list").stdout


def test_queues_bad_name_and_empty(run: Run, queue: durq.JobQueue) -> None:
    assert run("queues", "list").stdout.strip() == "no queues yet"
    result = run("queues", "pause", "bad name")
    assert result.exit_code == 1
    assert "bad queue name" in error_line(result)
    assert json.loads(run("queues", "list", "--json").stdout) == []
    assert run("queues", "pause").exit_code == 2


def test_workers(run: Run, queue: durq.JobQueue, queue_url: str) -> None:
    where = queue_url.removeprefix("sqlite:///")
    assert run("workers").stdout.splitlines() == [f"database: {where}", "no workers"]
    assert json.loads(run("workers", "--json").stdout) == []
    queue.worker_heartbeat("host-a:42", host="host-a", pid=42, queues=["mail", "sms"])
    table = run("workers").stdout
    assert "host-a:42" in table and "mail,sms" in table
    [info] = json.loads(run("workers", "--json").stdout)
    assert set(info) == WORKER_FIELDS
    assert (info["id"], info["pid"], info["queues"]) == ("host-a:42", 42, ["mail", "sms"])


def test_stats_json_shape_and_table(run: Run, queue: durq.JobQueue) -> None:
    make_job(queue, "queued", queue="mail")
    make_job(queue, "unprocessable", queue="mail")
    make_job(queue, "succeeded", queue="sms")
    queue.pause("sms")
    data = json.loads(run("stats", "--json").stdout)
    assert set(data["queues"]) == {"mail", "sms"}
    mail = data["queues"]["mail"]
    assert {s.value for s in durq.JobState} | {"paused", "oldest_queued_age"} <= set(mail)
    assert (mail["queued"], mail["unprocessable"], mail["paused"]) == (1, 1, False)
    assert data["queues"]["sms"]["paused"] is True
    assert isinstance(mail["oldest_queued_age"], float)
    assert data["workers"] == 0

    table = run("stats")
    assert table.exit_code == 0
    assert "mail" in table.stdout and "sms" in table.stdout and "paused" in table.stdout
    totals = next(line for line in table.stdout.splitlines() if line.strip().startswith("total"))
    assert totals.split()[1:] == ["1", "0", "1", "1", "0"]  # queued … cancelled


def test_stats_watch_and_json_do_not_mix(run: Run) -> None:
    result = run("stats", "--json", "--watch")
    assert result.exit_code == 2


@pytest.mark.slow
def test_stats_watch_runs_until_ctrl_c(
    queue: durq.JobQueue, queue_url: str, python_env: dict[str, str]
) -> None:
    make_job(queue, "queued", queue="watched")
    proc = subprocess.Popen(
        [sys.executable, "-m", "durq", "--db", queue_url, "stats", "--watch", "--interval", "0.2"],
        env=python_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        assert proc.poll() is None, proc.communicate()  # still watching
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "watched" in out
    assert "Traceback" not in err and "Aborted" not in err


# -- export / import -------------------------------------------------------------------------


def test_export_import_roundtrip_keeps_ids(
    run: Run, queue: durq.JobQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_transfer, "EXPORT_PAGE", 2)  # so the keyset paging is walked
    jobs = [queue.enqueue({"n": n}, queue="q", priority=n, dedupe_key=f"k{n}") for n in range(4)]
    jobs.append(queue.enqueue({"late": True}, delay=3600, max_attempts=9, timeout=5))
    retried = make_job(queue, "running")
    retried = queue.fail(retried, "boom", retry=True)  # queued again, one attempt used
    jobs.append(retried)
    finished = make_job(queue, "succeeded")

    exported = run("export")
    assert exported.exit_code == 0
    lines = exported.stdout.splitlines()
    assert len(lines) == len(jobs)
    assert finished.id not in exported.stdout
    dump = tmp_path / "jobs.jsonl"
    dump.write_text(exported.stdout)

    other = f"sqlite:///{tmp_path}/other.db"
    result = run("import", str(dump), db=other)
    assert (result.exit_code, result.stdout.strip()) == (0, f"imported {len(jobs)} jobs")
    with durq.connect(other) as copy:
        for job in jobs:
            # import_jobs stamps updated_at anew and does not carry last_error over.
            moved = copy.get(job.id).to_dict()
            assert moved == job.to_dict() | {k: moved[k] for k in ("updated_at", "last_error")}
        assert copy.get(retried.id).attempts == 1

    again = run("import", db=other, input=exported.stdout)  # from stdin, a second time
    assert again.stdout.strip() == f"imported 0 jobs ({len(jobs)} already present)"
    with durq.connect(other) as copy:
        assert len(copy.list_jobs(limit=1000)) == len(jobs)


def test_export_other_state_and_queue(run: Run, queue: durq.JobQueue) -> None:
    done = make_job(queue, "succeeded", queue="a")
    make_job(queue, "succeeded", queue="b")
    lines = run("export", "--state", "succeeded", "--queue", "a").stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [done.id]
    assert all(set(json.loads(line)) == JOB_FIELDS | {"retry"} for line in lines)


def _export_line(job: durq.Job, **changes: Any) -> str:
    return json.dumps(job.to_dict() | changes)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{nope", "line 2 is not JSON"),
        ("[1]", "line 2: a job must be a JSON object"),
        ('{"id": "x"}', "line 2: not a durq job: missing queue"),
        ("EXTRA", "line 2: not a durq job: unknown field 'colour'"),
        ("TIME", "line 2: run_at is not an ISO 8601 time"),
        ("STATE", "line 2: unknown state 'done'"),
        ("FINISHED", "only queued jobs can be imported"),
    ],
)
def test_import_bad_line_imports_nothing(
    run: Run, queue: durq.JobQueue, tmp_path: Path, bad: str, message: str
) -> None:
    good = queue.enqueue({"n": 1})
    sample = queue.enqueue({"n": 2})
    replacements = {
        "EXTRA": _export_line(sample, colour="red"),
        "TIME": _export_line(sample, run_at="yesterday"),
        "STATE": _export_line(sample, state="done"),
        "FINISHED": _export_line(make_job(queue, "succeeded")),
    }
    text = _export_line(good) + "\n" + replacements.get(bad, bad) + "\n"
    other = f"sqlite:///{tmp_path}/other.db"
    result = run("import", db=other, input=text)
    assert result.exit_code == 1
    assert message in error_line(result)
    with durq.connect(other) as copy:
        assert copy.list_jobs() == []


# -- databases that cannot be used -----------------------------------------------------------


def test_unreachable_database(run: Run) -> None:
    result = run("enqueue", "1", db="sqlite:////nonexistent/dir/x.db")
    assert result.exit_code == 1
    assert "/nonexistent/dir does not exist" in error_line(result)
    assert not Path("/nonexistent/dir").exists()


def test_unknown_scheme(run: Run) -> None:
    result = run("jobs", "list", db="mysql://localhost/x")
    assert result.exit_code == 1
    assert "scheme must be one of" in error_line(result)


@pytest.mark.parametrize("kind", ["text", "sqlite"])
def test_not_a_durq_database_is_left_alone(run: Run, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "other.db"
    if kind == "text":
        path.write_text("hello, not a database\n")
    else:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE notes (body TEXT)")
            conn.execute("INSERT INTO notes VALUES ('mine')")
        conn.close()
    before = path.read_bytes()
    result = run("enqueue", "1", db=f"sqlite:///{path}")
    assert result.exit_code == 1
    assert "not a" in error_line(result)
    assert path.read_bytes() == before


def test_db_from_the_environment(queue_url: str, queue: durq.JobQueue) -> None:
    result = CliRunner().invoke(main, ["enqueue", "7"], env={"DURQ_URL": queue_url})
    assert result.exit_code == 0
    assert queue.get(result.stdout.strip()).payload == 7


def test_debug_shows_the_traceback(
    queue_url: str, queue: durq.JobQueue, python_env: dict[str, str]
) -> None:
    base = [sys.executable, "-m", "durq", "--db", queue_url]
    plain = subprocess.run([*base, "jobs", "show", "0000abcd"], env=python_env, capture_output=True)
    assert plain.returncode == 1
    where = queue_url.removeprefix("sqlite:///")
    assert plain.stderr.decode() == f"error: no job's id starts 0000abcd in {where}\n"
    debug = subprocess.run(
        [*base, "--debug", "jobs", "show", "0000abcd"], env=python_env, capture_output=True
    )
    assert debug.returncode == 1
    err = debug.stderr.decode()
    assert "Traceback (most recent call last)" in err
    assert "durq.errors.JobNotFound: no job's id starts 0000abcd" in err


def test_unknown_command_is_a_usage_error(run: Run) -> None:
    result = run("frobnicate")
    assert result.exit_code == 2
    assert "No such command" in result.stderr


# -- help ------------------------------------------------------------------------------------


def _walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _walk(sub, (*path, name))


def _command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def test_every_command_has_help() -> None:
    paths = list(_walk(main))
    names = {" ".join(p) for p in paths}
    expected = {
        "enqueue", "worker", "produce", "jobs list", "jobs show", "jobs resubmit", "jobs cancel",
        "jobs delete", "jobs purge", "queues list", "queues pause", "queues resume", "workers",
        "stats", "export", "import", "dashboard", "demo verify",
    }  # fmt: skip
    assert expected <= names
    for path in paths:
        command = _command_at(path)
        assert command.help and command.help.strip(), f"durq {' '.join(path)} has no help"
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: " in result.stdout


def test_every_option_has_help() -> None:
    for path in _walk(main):
        for param in _command_at(path).params:
            if isinstance(param, click.Option):
                assert param.help, f"durq {' '.join(path)} {param.opts[0]} has no help"
