"""kill -9 chaos with many jobs per worker: three ``durq worker --app`` processes running
thread and async tasks four at a time are killed and restarted at random while they drain.
Afterwards no job is lost, no job ran on two workers at once, the attempt history of every
job is a clean sequence, and poison jobs that kill their worker end unprocessable. On every
backend."""

from __future__ import annotations

import itertools
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

import app_db
import chaos_app
import durq
from durq import JobState, Outcome, demo
from worker_support import Workers, finish

pytestmark = pytest.mark.slow


def test_kill_dash_nine_chaos_loses_nothing_and_never_overlaps(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    chaos_app.app.use_queue(queue)
    rng = random.Random(1129)
    jobs = [chaos_app.work.enqueue(rng.uniform(0, 0.2)) for _ in range(120)]
    jobs += [chaos_app.awork.enqueue(rng.uniform(0, 0.2)) for _ in range(120)]
    poison = [chaos_app.poison.enqueue() for _ in range(3)]
    workers.env["DURQ_CHAOS_DIR"] = str(tmp_path)
    args = ("--app", "chaos_app:app", "--concurrency", "4", "--lease", "1")
    args += ("--batch-window", "0.05")

    def keep_up(procs: list[subprocess.Popen[str]]) -> list[subprocess.Popen[str]]:
        """Replace the workers that died (poison kills its own), as Supervisor would."""
        return [p if p.poll() is None else workers.start(*args) for p in procs]

    live = [workers.start(*args) for _ in range(3)]
    kills = 0
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.4, 1.2))
        victim = rng.randrange(len(live))
        if live[victim].poll() is None:
            live[victim].send_signal(signal.SIGKILL)
            kills += 1
        finish(live[victim])
        live[victim] = workers.start(*args)
        live = keep_up(live)

    def settled() -> bool:
        states = {queue.get(j.id).state for j in [*jobs, *poison]}
        return states <= {JobState.SUCCEEDED, JobState.UNPROCESSABLE}

    give_up = time.monotonic() + 180
    while not settled():
        assert time.monotonic() < give_up, "the jobs never settled"
        live = keep_up(live)
        time.sleep(0.2)
    for proc in live:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        # 0, or killed by the poison, or a replacement still starting when SIGTERM came
        assert finish(proc)[0] in (0, -signal.SIGKILL, -signal.SIGTERM)

    assert kills >= 5
    for job in poison:
        dead = queue.get(job.id)
        assert (dead.state, dead.attempts) == (JobState.UNPROCESSABLE, 2)
        assert [a.outcome for a in queue.attempts(job.id)] == [Outcome.LOST, Outcome.LOST]
    for job in jobs:
        done = queue.get(job.id)
        assert done.state is JobState.SUCCEEDED, done  # no job lost
        history = queue.attempts(job.id)
        assert [a.attempt for a in history] == list(range(1, len(history) + 1))
        assert [a.outcome for a in history][-1] is Outcome.SUCCEEDED
        assert all(a.outcome is Outcome.LOST for a in history[:-1])
        for before, after in itertools.pairwise(history):
            assert before.finished_at is not None and before.finished_at <= after.started_at
        assert done.result["attempt"] == len(history)

    # What the tasks themselves saw: no job's runs overlapped in time.
    runs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for path in tmp_path.glob("runs-*.txt"):
        for line in path.read_text().splitlines():
            job_id, _attempt, _pid, started, ended = line.split()
            runs[job_id].append((float(started), float(ended)))
    assert set(runs) == {j.id for j in jobs}
    for job_id, spans in runs.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"job {job_id} ran twice at once: {spans}"


def test_kill_dash_nine_chaos_over_the_demo_ledger_applies_each_transfer_once(
    queue_url: str, queue: durq.JobQueue, workers: Workers
) -> None:
    """The demo writes each transfer and completes its job in one transaction: workers killed
    at any point, before, inside or after it, leave every transfer applied exactly once."""
    rng = random.Random(2911)
    transfers = [demo.transfer_payload(rng) for _ in range(300)]
    # Failed attempts come back within half a second, however many there were.
    fast_retry = durq.RetryPolicy(base=0.05, cap=0.5)
    jobs = queue.enqueue_many(transfers, max_attempts=50, retry=fast_retry)
    workers.env.update(DURQ_DEMO_WORK="0.2", DURQ_DEMO_FAIL_RATE="0.1")
    args = ("--handler", "durq.demo:apply_transfer", "--concurrency", "2", "--lease", "1")

    live = [workers.start(*args) for _ in range(3)]
    kills = 0
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.3, 1.0))
        victim = rng.randrange(len(live))
        live[victim].send_signal(signal.SIGKILL)
        kills += 1
        finish(live[victim])
        live[victim] = workers.start(*args)

    give_up = time.monotonic() + 180
    while {queue.get(j.id).state for j in jobs} != {JobState.SUCCEEDED}:
        assert time.monotonic() < give_up, "the transfers never all succeeded"
        time.sleep(0.2)
    for proc in live:
        proc.send_signal(signal.SIGTERM)
        # 0, or a replacement still starting when SIGTERM came
        assert finish(proc)[0] in (0, -signal.SIGTERM)
    assert kills >= 6

    lost = [a for j in jobs for a in queue.attempts(j.id) if a.outcome is Outcome.LOST]
    assert lost, "no worker died holding a transfer: the test did not test anything"
    verify = subprocess.run(
        [sys.executable, "-m", "durq", "--db", queue_url, "demo", "verify"],
        env=workers.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    entries = app_db.sql(queue_url, "SELECT job_id, account, amount FROM demo_entries")
    assert sorted(entries) == sorted(
        (j.id, t["account"], t["amount"]) for j, t in zip(jobs, transfers, strict=True)
    )
