"""The ``durq`` command line end to end on every backend (conftest's ``queue_url``).

test_cli.py covers every command and error path on SQLite; the CLI only talks to
``JobQueue``, so here a few journeys check that nothing in it assumes one backend.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from click.testing import CliRunner, Result

import durq
from durq.cli import main

JOB_FIELDS = {f.name for f in dataclasses.fields(durq.Job) if f.metadata.get("json", True)}


def durq_cli(url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--db", url, *args], input=input)


def test_submit_run_break_and_resubmit(queue_url: str, queue: durq.JobQueue) -> None:
    ids = durq_cli(queue_url, "enqueue", "-q", "mail", "-", input="1\n2\n3\n").stdout.split()
    assert len(ids) == 3
    bad = durq_cli(queue_url, "enqueue", "-q", "mail", "-", input="4\n{oops\n")
    assert bad.exit_code == 1 and "line 2 is not JSON" in bad.stderr
    assert len(queue.list_jobs()) == 3  # nothing from the bad batch

    worked = durq_cli(queue_url, "worker", "--handler", "builtins:repr", "--burst")
    assert worked.exit_code == 0, worked.output
    listed = json.loads(durq_cli(queue_url, "jobs", "list", "--json").stdout)
    assert {d["state"] for d in listed} == {"succeeded"}
    assert all(set(d) == JOB_FIELDS for d in listed)

    # Break one: a job that ends unprocessable, then bulk-resubmit it.
    job = queue.enqueue({"broken": True}, queue="mail", priority=9)
    claimed = queue.claim("w", queues=["mail"])
    assert claimed is not None and claimed.id == job.id
    queue.fail(claimed, "ValueError: broken", retry=False)
    shown = json.loads(durq_cli(queue_url, "jobs", "show", job.id, "--json").stdout)
    assert shown["job"]["state"] == "unprocessable"
    assert [a["outcome"] for a in shown["attempts"]] == ["unprocessable"]
    result = durq_cli(queue_url, "jobs", "resubmit", "--state", "unprocessable", "-q", "mail")
    assert result.stdout.strip() == "resubmitted 1 job"
    assert queue.get(job.id).state == "queued"

    assert durq_cli(queue_url, "jobs", "cancel", job.id).exit_code == 0
    assert durq_cli(queue_url, "jobs", "delete", job.id).exit_code == 0
    assert durq_cli(queue_url, "jobs", "purge", "--older-than", "0s").stdout == "purged 3 jobs\n"
    assert queue.list_jobs() == []


def test_queues_workers_and_stats(queue_url: str, queue: durq.JobQueue) -> None:
    produced = durq_cli(queue_url, "produce", "--count", "3", "--interval", "0", "-q", "demo")
    assert produced.exit_code == 0
    assert durq_cli(queue_url, "queues", "pause", "demo").exit_code == 0
    queue.worker_heartbeat("w-1", host="h", pid=1, queues=None)

    stats = json.loads(durq_cli(queue_url, "stats", "--json").stdout)
    demo = stats["queues"]["demo"]
    assert (demo["queued"], demo["paused"], stats["workers"]) == (3, True, 1)
    [entry] = json.loads(durq_cli(queue_url, "queues", "list", "--json").stdout)
    assert (entry["name"], entry["paused"]) == ("demo", True)
    [worker] = json.loads(durq_cli(queue_url, "workers", "--json").stdout)
    assert worker["id"] == "w-1"
    assert "demo" in durq_cli(queue_url, "stats").stdout


def test_move_a_queue_to_sqlite_and_back(
    queue_url: str, queue: durq.JobQueue, tmp_path: Path
) -> None:
    jobs = [queue.enqueue({"n": n}, queue="q", priority=n) for n in range(3)]
    dump = durq_cli(queue_url, "export").stdout
    side = f"sqlite:///{tmp_path}/side.db"
    assert durq_cli(side, "import", input=dump).stdout.strip() == "imported 3 jobs"

    # Back to a fresh queue of the backend under test, from SQLite's export.
    for job in jobs:
        queue.cancel(job.id)
        queue.delete(job.id)
    back = durq_cli(queue_url, "import", input=durq_cli(side, "export").stdout)
    assert back.stdout.strip() == "imported 3 jobs"
    for job in jobs:
        moved = queue.get(job.id)
        assert (moved.payload, moved.priority, moved.created_at) == (
            job.payload,
            job.priority,
            job.created_at,
        )
