"""Tasks run by real ``durq worker --app`` processes, and the command line that knows tasks.
The apps are in tests/task_app.py; outcomes are read back from the queue."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import durq
import task_app
from durq import JobState
from worker_support import Workers, finish, wait_for

pytestmark = pytest.mark.slow


def cli(env: dict[str, str], url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durq", "--db", url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stop(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        code, err = finish(proc)
        assert code == 0, err


def test_two_workers_route_three_tasks(queue: durq.JobQueue, workers: Workers) -> None:
    task_app.app.use_queue(queue)
    jobs = []
    for n in range(6):
        jobs += [
            task_app.send_email.enqueue(f"user{n}@example.com", subject="hi"),
            task_app.resize.enqueue(f"img{n}.png", 100 + n),
            task_app.charge.enqueue(n),
        ]
    procs = [
        workers.start("--app", "task_app:app", "--concurrency", "3", "--worker-id", f"w{i}")
        for i in range(2)
    ]
    wait_for(lambda: len(queue.workers()) == 2, "both workers to start")
    wait_for(lambda: all(queue.get(j.id).state is JobState.SUCCEEDED for j in jobs), "the jobs")
    stop(*procs)

    pids = {p.pid for p in procs}
    for job in (queue.get(j.id) for j in jobs):
        assert job.attempts == 1 and job.result["pid"] in pids
        if job.task == task_app.send_email.name:
            assert job.queue == "email" and job.result["sent"].startswith("user")
        elif job.task == task_app.resize.name:
            assert (job.queue, job.priority) == ("images", 3)
            assert job.result["resized"] == job.payload["args"][0]
        else:
            assert job.task == "billing.charge" and job.queue == "billing"
            assert job.result == {**job.result, "charged": job.payload["args"][0], "job": job.id}


def test_per_task_retry_and_retry_on_in_a_real_worker(
    queue: durq.JobQueue, workers: Workers
) -> None:
    task_app.app.use_queue(queue)
    flaky = task_app.flaky.enqueue(1)
    retried = task_app.picky.enqueue("connection")
    given_up = task_app.picky.enqueue("value")
    proc = workers.start("--app", "task_app:app")
    wait_for(lambda: queue.workers(), "the worker to start")

    wait_for(lambda: queue.get(flaky.id).state is JobState.SUCCEEDED, "the flaky task")
    wait_for(lambda: queue.get(given_up.id).state is JobState.UNPROCESSABLE, "the picky task")
    stop(proc)

    attempts = queue.attempts(flaky.id)
    assert [a.outcome for a in attempts] == ["failed", "succeeded"]
    assert attempts[0].finished_at is not None
    waited = (attempts[1].started_at - attempts[0].finished_at).total_seconds()
    assert waited >= 0.2  # the task's own backoff of 0.2 s, not the queue's
    assert queue.get(given_up.id).attempts == 1
    assert queue.get(retried.id).attempts >= 1
    assert queue.get(retried.id).state in (JobState.QUEUED, JobState.RUNNING)


def test_an_unknown_task_is_retried_for_a_newer_worker(
    queue: durq.JobQueue, workers: Workers
) -> None:
    job = queue.enqueue({"args": [], "kwargs": {}}, task="task_app.not_yet", max_attempts=3)
    code, err = finish(workers.start("--app", "task_app:app", "--burst"))
    assert code == 0, err
    failed = queue.get(job.id)
    assert (failed.state, failed.attempts) == (JobState.QUEUED, 1)
    assert failed.last_error is not None
    assert "app task_app has no task 'task_app.not_yet'" in failed.last_error


def test_wait_returns_a_real_workers_result(queue: durq.JobQueue, workers: Workers) -> None:
    task_app.app.use_queue(queue)
    job = task_app.charge.enqueue(41)
    proc = workers.start("--app", "task_app:app")
    wait_for(lambda: queue.workers(), "the worker to start")
    done = task_app.app.wait(job, timeout=60)
    stop(proc)
    assert (done.state, done.result["charged"], done.result["attempt"]) == (
        JobState.SUCCEEDED,
        41,
        1,
    )


def slot_of(job: durq.Job) -> datetime:
    assert job.dedupe_key is not None
    return datetime.fromisoformat(job.dedupe_key.split("@", 1)[1].replace("Z", "+00:00"))


def test_a_periodic_task_fires_once_per_slot_with_workers_coming_and_going(
    queue: durq.JobQueue, workers: Workers
) -> None:
    # Three workers start and stop at random times over about 14 one-second slots; at least
    # one runs throughout. Every slot while some worker ran must fire, and none twice.
    rng = random.Random(20261129)
    up: dict[int, tuple[float, float | None]] = {}
    procs: dict[int, subprocess.Popen[str]] = {}

    def start(i: int) -> None:
        procs[i] = workers.start(
            "--app", "task_app:clock", "--queue", "ticks", "--worker-id", f"clock-{i}"
        )
        wait_for(lambda: any(w.id == f"clock-{i}" for w in queue.workers()), "a clock worker")
        up[i] = (time.time(), None)

    def halt(i: int) -> None:
        stop(procs.pop(i))
        up[i] = (up[i][0], time.time())

    start(0)
    deadline = time.time() + 14
    while time.time() < deadline:
        time.sleep(rng.uniform(0.3, 1.2))
        i = rng.choice([0, 1, 2])
        if i in procs and len(procs) > 1:
            halt(i)
        elif i not in procs:
            start(i)
    for i in list(procs):
        halt(i)

    ticks = queue.list_jobs(task=task_app.tick.name, limit=1000)
    slots = Counter(slot_of(j) for j in ticks)
    assert len(slots) >= 10 and max(slots.values()) == 1, slots
    # Covered: some worker was up (registered) from before the slot's previous second.
    spans = [(begin, end) for begin, end in up.values() if end is not None]
    first = min(b for b, _ in spans)
    last = max(e for _, e in spans)
    second = datetime.fromtimestamp(int(first) + 2, tz=UTC)
    while second.timestamp() < last - 1:
        covered = any(b <= second.timestamp() - 1.5 and second.timestamp() <= e for b, e in spans)
        if covered:
            assert second in slots, f"slot {second} was skipped while a worker ran"
        second += timedelta(seconds=1)
    assert len(up) >= 2, "the random schedule never started a second worker"
    # Every stored slot runs once: finish them with one more (burst) worker.
    code, err = finish(workers.start("--app", "task_app:clock", "--queue", "ticks", "--burst"))
    assert code == 0, err
    for job in ticks:
        if slot_of(job).timestamp() <= time.time() - 1:
            ran = queue.get(job.id)
            assert (ran.state, ran.attempts) == (JobState.SUCCEEDED, 1), ran


# -- the command line --------------------------------------------------------------------------


def test_durq_enqueue_task(queue: durq.JobQueue, queue_url: str, workers: Workers) -> None:
    env = workers.env
    made = cli(
        env,
        queue_url,
        *("enqueue", "--app", "task_app:app", "--task", task_app.send_email.name),
        *("--args", '["ada@example.com"]', "--kwargs", '{"subject": "hi"}', "--priority", "4"),
    )
    assert made.returncode == 0, made.stderr
    job = queue.get(made.stdout.strip())
    assert (job.task, job.queue, job.priority) == (task_app.send_email.name, "email", 4)
    assert job.payload == {"args": ["ada@example.com"], "kwargs": {"subject": "hi"}}

    listed = cli(env, queue_url, "jobs", "list", "--task", task_app.send_email.name)
    assert listed.returncode == 0 and job.id in listed.stdout and "TASK" in listed.stdout
    shown = cli(env, queue_url, "jobs", "show", job.id)
    assert task_app.send_email.name in shown.stdout


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--task", "task_app.nope", "--app", "task_app:app"], 1, "has no task 'task_app.nope'"),
        (
            ["--task", "task_app.send_email", "--app", "task_app:app", "--args", "[1"],
            1,
            "--args is not JSON",
        ),
        (
            ["--task", "task_app.send_email", "--app", "task_app:app", "--args", "{}"],
            1,
            "JSON array",
        ),
        (
            ["--task", "task_app.send_email", "--app", "task_app:app"],
            1,
            "missing a required argument",
        ),
        (
            ["--task", "task_app.send_email", "--app", "task_app:app", "--args", '[{"x": NaN}]'],
            1,
            "not JSON",
        ),
        (["--task", "task_app.send_email"], 2, "--task needs the app"),
        (["--task", "x", "--app", "no_such_module:app"], 1, "cannot import app"),
        (["--task", "x", "--app", "task_app:send_email"], 1, "not a durq.App"),
        (['{"n": 1}', "--args", "[]"], 2, "--args and --kwargs go with --task"),
    ],
)
def test_durq_enqueue_task_refuses_bad_input_in_one_line(
    queue: durq.JobQueue, queue_url: str, workers: Workers, args: list[str], code: int, says: str
) -> None:
    done = cli(workers.env, queue_url, "enqueue", *args)
    assert done.returncode == code, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    if code == 1:
        assert done.stderr.count("\n") == 1
    assert queue.list_jobs() == []


def test_a_worker_refuses_an_app_with_a_bad_cron_in_one_line(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    (tmp_path / "badcron.py").write_text(
        "import durq\napp = durq.App()\n"
        "@app.periodic(cron='61 * * * *')\n@app.task\ndef t() -> None: ...\n"
    )
    workers.env["PYTHONPATH"] = f"{tmp_path}:{workers.env['PYTHONPATH']}"
    job = queue.enqueue("untouched")
    code, err = finish(workers.start("--app", "badcron:app"))
    assert code == 1
    assert err.count("\n") == 1 and "bad cron expression '61 * * * *'" in err
    assert queue.get(job.id).attempts == 0
    both = cli(workers.env, workers.url, "worker", "--app", "x:y", "--handler", "a:b")
    assert both.returncode == 2 and "one of them" in both.stderr
