"""Many real processes on one queue: every job is completed exactly once, no error escapes."""

from __future__ import annotations

import multiprocessing
import subprocess
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest

import durq
from durq import JobState, Outcome

from .conftest import start_proc

TIMEOUT = 240  # seconds to wait for the processes; only reached when something hangs


def run_at_once(procs: list[subprocess.Popen[str]], gate: Path) -> list[str]:
    """Open the gate once every process is ready; wait for all; return their stderr."""
    deadline = time.monotonic() + TIMEOUT
    while len(list(gate.glob("*.ready"))) < len(procs):
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        assert time.monotonic() < deadline, "processes never got ready"
        time.sleep(0.02)
    (gate / "go").touch()
    errors = []
    for p in procs:
        _, err = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0, err
        errors.append(err)
    return errors


@pytest.mark.slow
@pytest.mark.parametrize("program", ["drain", "drain_batches"])
def test_eight_processes_complete_each_job_exactly_once(
    queue: durq.JobQueue, queue_url: str, python_env: dict[str, str], tmp_path: Path, program: str
) -> None:
    jobs = queue.enqueue_many([{"n": n} for n in range(5000)])
    gate = tmp_path / "gate"
    gate.mkdir()
    outs = [tmp_path / f"done-{i}.txt" for i in range(8)]
    procs = [
        start_proc(python_env, program, queue_url, f"worker-{i}", str(out), str(gate))
        for i, out in enumerate(outs)
    ]
    errors = run_at_once(procs, gate)
    assert errors == [""] * 8

    reported = Counter(line for out in outs for line in out.read_text().split())
    assert reported.keys() == {job.id for job in jobs}
    assert set(reported.values()) == {1}, "some job was handed to two workers"
    assert sum(1 for out in outs if out.read_text()) >= 2, "only one process did any work"

    stats = queue.stats()["queues"]["default"]
    assert stats["succeeded"] == 5000
    assert stats["queued"] == stats["running"] == stats["unprocessable"] == 0
    by_worker = {}
    for i, out in enumerate(outs):
        for job_id in out.read_text().split():
            by_worker[job_id] = f"worker-{i}"
    for job in jobs:
        [attempt] = queue.attempts(job.id)
        assert attempt.outcome is Outcome.SUCCEEDED
        assert attempt.worker_id == by_worker[job.id]
        done = queue.get(job.id)
        assert done.state is JobState.SUCCEEDED and done.attempts == 1
        assert done.result == by_worker[job.id]


@pytest.mark.slow
def test_sixteen_processes_hammering_one_database(
    queue_url: str, python_env: dict[str, str], tmp_path: Path
) -> None:
    # No connection beforehand: the sixteen also race to create the schema.
    rounds = 60
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = [
        start_proc(python_env, "hammer", queue_url, f"hammer-{i}", str(rounds), str(gate))
        for i in range(16)
    ]
    errors = run_at_once(procs, gate)
    for err in errors:
        assert "locked" not in err and "BackendError" not in err
        assert err == ""

    with durq.connect(queue_url) as q:
        while (job := q.claim("leftovers")) is not None:  # rounds whose claim came up empty
            q.complete(job, {"by": "leftovers"})
        stats = q.stats()["queues"]["default"]
        assert stats["succeeded"] == 16 * rounds
        assert sum(stats[s.value] for s in JobState) == 16 * rounds
        jobs = q.list_jobs(limit=1000)
        assert len(jobs) == 16 * rounds
        for job in jobs:
            assert [a.outcome for a in q.attempts(job.id)] == [Outcome.SUCCEEDED]
        assert q.workers() == []  # every hammer said it stopped


@pytest.mark.slow
def test_processes_racing_with_one_dedupe_key_get_one_job(
    queue: durq.JobQueue, queue_url: str, python_env: dict[str, str], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    outs = [tmp_path / f"ids-{i}.txt" for i in range(6)]
    procs = [
        start_proc(python_env, "dedupe", queue_url, f"producer-{i}", str(out), str(gate))
        for i, out in enumerate(outs)
    ]
    assert run_at_once(procs, gate) == [""] * 6
    answers = [out.read_text().split() for out in outs]
    assert all(ids == answers[0] for ids in answers), "producers were told different jobs"
    jobs = queue.list_jobs(limit=1000)
    assert sorted(j.id for j in jobs) == sorted(answers[0])
    assert sorted(j.dedupe_key or "" for j in jobs) == sorted(f"key-{k}" for k in range(30))


def test_threads_share_one_queue_object(queue: durq.JobQueue) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                queue.enqueue({"thread": n, "i": i})
                job = queue.claim(f"thread-{n}")
                if job is not None:
                    queue.heartbeat(job)
                    queue.complete(job, n)
                queue.stats()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT)
    assert errors == []
    while (job := queue.claim("leftovers")) is not None:
        queue.complete(job)
    jobs = queue.list_jobs(limit=1000)
    assert len(jobs) == 160
    for job in jobs:
        assert job.state is JobState.SUCCEEDED
        assert [a.outcome for a in queue.attempts(job.id)] == [Outcome.SUCCEEDED]


def drain_in_child(q: durq.JobQueue, worker_id: str, out: Path) -> None:
    done = []
    while (job := q.claim(worker_id)) is not None:
        q.complete(job, worker_id)
        done.append(job.id)
    out.write_text("\n".join(done))


@pytest.mark.slow
def test_forked_children_use_the_parents_queue_object(queue: durq.JobQueue, tmp_path: Path) -> None:
    jobs = queue.enqueue_many(range(400))
    assert queue.stats()["queues"]["default"]["queued"] == 400  # the parent's connection is open
    fork = multiprocessing.get_context("fork")
    outs = [tmp_path / f"child-{n}.txt" for n in range(4)]
    children = [
        fork.Process(target=drain_in_child, args=(queue, f"child-{n}", out))
        for n, out in enumerate(outs)
    ]
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork in a process with threads (pytest-xdist has some);
        # the children here only run durq code, which opens its own connection.
        warnings.simplefilter("ignore", DeprecationWarning)
        for child in children:
            child.start()
    for child in children:
        child.join(timeout=TIMEOUT)
        assert child.exitcode == 0
    done = Counter(i for out in outs for i in out.read_text().split())
    assert done.keys() == {job.id for job in jobs} and set(done.values()) == {1}
    assert queue.stats()["queues"]["default"]["succeeded"] == 400  # and the parent's still works
    assert queue.enqueue("after").state is JobState.QUEUED
