"""The worker, run for real: ``python -m durq worker`` subprocesses, real signals, real crashes.

Handlers come from tests/handlers.py. Leases are 1-2 s so that lost workers are noticed fast.
Outcomes are read back from the queue's database, never from the worker's own say-so.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import durq
from durq.worker import HandlerError, Worker, WorkerError, load_handler
from worker_support import Workers, finish, wait_for


def history(queue: durq.JobQueue, job_id: str) -> list[tuple[int, str, str | None]]:
    return [(a.attempt, a.worker_id, a.outcome) for a in queue.attempts(job_id)]


def state_is(queue: durq.JobQueue, job_id: str, *states: str) -> Callable[[], bool]:
    return lambda: queue.get(job_id).state in states


# -- signals ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_lets_the_running_job_finish_and_claims_nothing_more(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    long = queue.enqueue({"seconds": 1.5, "marker": str(marker)}, priority=1)
    waiting = queue.enqueue({"seconds": 0})
    proc = workers.start(
        "--handler", "handlers:sleeps", "--lease", "1", "--worker-id", "w1", "--concurrency", "1"
    )
    wait_for(marker.exists, "the job to start")

    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)

    assert code == 0, err
    done = queue.get(long.id)
    assert done.state == "succeeded"
    assert done.result == {"slept": 1.5, "pid": proc.pid}
    assert history(queue, long.id) == [(1, "w1", "succeeded")]
    after = queue.get(waiting.id)  # no new claim after the signal
    assert (after.state, after.attempts) == ("queued", 0)
    assert queue.workers() == []
    assert "SIGTERM received" in err


@pytest.mark.slow
def test_second_sigterm_releases_the_job_at_once(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    job = queue.enqueue({"seconds": 60, "marker": str(marker)})
    proc = workers.start("--handler", "handlers:sleeps", "--lease", "1", "--worker-id", "w1")
    wait_for(marker.exists, "the job to start")

    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, timeout=10)  # well before the 30 s grace or the 60 s job

    assert code == 0, err
    released = queue.get(job.id)
    assert (released.state, released.attempts, released.worker_id) == ("queued", 0, None)
    assert history(queue, job.id) == [(1, "w1", "released")]
    assert queue.workers() == []


@pytest.mark.slow
def test_a_job_still_running_when_the_grace_ends_is_released(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    job = queue.enqueue({"seconds": 60, "marker": str(marker)})
    proc = workers.start("--handler", "handlers:sleeps", "--lease", "1", "--grace", "0.5")
    wait_for(marker.exists, "the job to start")

    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, timeout=10)

    assert code == 0, err
    released = queue.get(job.id)
    assert (released.state, released.attempts) == ("queued", 0)
    assert [outcome for _, _, outcome in history(queue, job.id)] == ["released"]
    assert "grace of 0.5s ended" in err


@pytest.mark.slow
def test_after_sigkill_another_worker_takes_the_job_once_the_lease_expires(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    job = queue.enqueue({"seconds": 1, "marker": str(marker)})
    first = workers.start("--handler", "handlers:sleeps", "--lease", "1", "--worker-id", "a")
    wait_for(marker.exists, "the job to start")

    first.send_signal(signal.SIGKILL)
    assert finish(first)[0] == -signal.SIGKILL
    assert queue.get(job.id).state == "running"  # until its lease expires
    second = workers.start("--handler", "handlers:sleeps", "--lease", "1", "--worker-id", "b")
    wait_for(state_is(queue, job.id, "succeeded"), "the second worker to finish the job")

    assert history(queue, job.id) == [(1, "a", "lost"), (2, "b", "succeeded")]
    assert queue.get(job.id).result["pid"] == second.pid
    second.send_signal(signal.SIGTERM)
    assert finish(second)[0] == 0


@pytest.mark.slow
def test_a_worker_restarted_under_the_same_id_says_what_its_predecessor_left(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    job = queue.enqueue({"seconds": 60, "marker": str(marker)})
    args = ("--handler", "handlers:sleeps", "--lease", "2", "--worker-id", "host:consumer-00")
    first = workers.start(*args)
    wait_for(marker.exists, "the job to start")
    wait_for(lambda: [w.pid for w in queue.workers()] == [first.pid], "the first to register")
    first.send_signal(signal.SIGKILL)
    finish(first)

    again = workers.start(*args)  # as Supervisor restarts it
    wait_for(
        lambda: [w.pid for w in queue.workers() if w.id == "host:consumer-00"] == [again.pid],
        "the new process to register",
    )
    again.send_signal(signal.SIGTERM)
    _, log = finish(again)
    assert (
        f"worker host:consumer-00 restarted: the earlier process (pid {first.pid}, gone) "
        f"held 1 job(s): {job.id}; they run again when their leases expire, in "
    ) in log


@pytest.mark.slow
def test_a_fresh_worker_with_jobs_waiting_says_nothing_of_a_predecessor(
    queue: durq.JobQueue, workers: Workers
) -> None:
    jobs = queue.enqueue_many([{"n": n} for n in range(20)])
    proc = workers.start("--handler", "handlers:ok", "--worker-id", "host:consumer-01")
    wait_for(lambda: all(queue.get(j.id).state == "succeeded" for j in jobs), "the jobs")
    proc.send_signal(signal.SIGTERM)
    code, log = finish(proc)
    assert code == 0 and "restarted" not in log and "also used by" not in log


@pytest.mark.slow
def test_two_live_workers_given_one_id_are_told_to_use_their_own(
    queue: durq.JobQueue, workers: Workers
) -> None:
    first = workers.start("--handler", "handlers:sleeps", "--worker-id", "twin")
    wait_for(lambda: [w.pid for w in queue.workers()] == [first.pid], "the first to register")
    second = workers.start("--handler", "handlers:sleeps", "--worker-id", "twin")
    wait_for(lambda: [w.pid for w in queue.workers()] == [second.pid], "the second to register")
    for proc in (first, second):
        proc.send_signal(signal.SIGTERM)
    _, log = finish(second)
    finish(first)
    assert (
        f"worker id twin is also used by pid {first.pid}, which is running: give each worker "
        "its own --worker-id"
    ) in log


@pytest.mark.slow
def test_a_frozen_worker_that_lost_its_lease_discards_its_outcome(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    job = queue.enqueue({"seconds": 2, "marker": str(marker)})
    frozen = workers.start("--handler", "handlers:sleeps", "--lease", "1", "--worker-id", "a")
    wait_for(marker.exists, "the job to start")
    frozen.send_signal(signal.SIGSTOP)  # no renewals: the lease runs out
    other = workers.start("--handler", "handlers:sleeps", "--lease", "1", "--worker-id", "b")
    wait_for(lambda: queue.get(job.id).worker_id == "b", "the other worker to take the job")

    frozen.send_signal(signal.SIGCONT)  # its handler is done by now; the lease is not its own
    wait_for(state_is(queue, job.id, "succeeded"), "the other worker to finish the job")

    assert history(queue, job.id) == [(1, "a", "lost"), (2, "b", "succeeded")]
    assert queue.get(job.id).result["pid"] == other.pid
    for proc in (frozen, other):
        proc.send_signal(signal.SIGTERM)
    code, err = finish(frozen)
    assert code == 0
    assert f"job {job.id} queue=default attempt=1 lease lost" in err
    assert finish(other)[0] == 0


# -- what handlers do ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_handler_that_raises_fails_the_attempt_and_is_retried(
    queue: durq.JobQueue, workers: Workers
) -> None:
    job = queue.enqueue({"n": 1}, max_attempts=2)
    proc = workers.start("--handler", "handlers:raises", "--lease", "1")
    # The retry waits for the backoff (about 1 s), then fails again: no attempts left.
    wait_for(state_is(queue, job.id, "unprocessable"), "both attempts to fail")

    failed = queue.get(job.id)
    assert failed.attempts == 2
    assert failed.last_error is not None
    assert failed.last_error.startswith("Traceback (most recent call last)")
    assert failed.last_error.strip().endswith("ValueError: boom on attempt 2")
    attempts = queue.attempts(job.id)
    assert [a.outcome for a in attempts] == ["failed", "failed"]
    assert attempts[0].error is not None and "boom on attempt 1" in attempts[0].error
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0
    assert f"job {job.id} queue=default attempt=1 failed in " in err
    assert "retry in" in err


@pytest.mark.slow
def test_unprocessable_fails_the_job_at_once(queue: durq.JobQueue, workers: Workers) -> None:
    job = queue.enqueue({"n": 1}, max_attempts=5)
    code, err = finish(workers.start("--handler", "handlers:unprocessable", "--burst"))

    assert code == 0, err
    failed = queue.get(job.id)
    assert (failed.state, failed.attempts) == ("unprocessable", 1)
    assert failed.last_error == "this job can never work"
    assert [a.outcome for a in queue.attempts(job.id)] == ["unprocessable"]


@pytest.mark.slow
def test_a_result_that_is_not_json_fails_the_attempt(
    queue: durq.JobQueue, workers: Workers
) -> None:
    job = queue.enqueue({"n": 1}, max_attempts=1)
    code, err = finish(workers.start("--handler", "handlers:bad_result", "--burst"))

    assert code == 0, err
    failed = queue.get(job.id)
    assert failed.state == "unprocessable"
    assert failed.last_error is not None
    assert "return value cannot be stored" in failed.last_error


@pytest.mark.slow
def test_a_job_past_its_timeout_fails_as_timed_out_and_the_worker_exits(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    job = queue.enqueue({"seconds": 60}, timeout=0.5)
    code, err = finish(workers.start("--handler", "handlers:sleeps", "--lease", "1"))

    assert code == 3, err  # non-zero: Supervisor restarts it clean
    failed = queue.get(job.id)
    assert (failed.state, failed.attempts) == ("queued", 1)  # retried later, with backoff
    assert failed.last_error == "timed out after 0.5 s"
    assert [a.outcome for a in queue.attempts(job.id)] == ["failed"]
    assert queue.workers() == []
    assert "timed out after 0.5 s" in err


@pytest.mark.slow
def test_a_handler_that_kills_its_worker_ends_unprocessable_while_others_complete(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    deadly = queue.enqueue({"crash": True}, priority=10, max_attempts=2)
    fine = queue.enqueue_many([{"n": n} for n in range(3)])

    def all_settled() -> bool:
        return queue.get(deadly.id).state == "unprocessable" and all(
            queue.get(j.id).state == "succeeded" for j in fine
        )

    # Restart the worker whenever it dies, as Supervisor's autorestart does.
    current = None
    starts = 0
    deadline = time.monotonic() + 40
    while not all_settled():
        assert time.monotonic() < deadline, "timed out waiting for the jobs to settle"
        if current is None or current.poll() is not None:
            current = workers.start("--handler", "handlers:crash_or_ok", "--lease", "1")
            starts += 1
        time.sleep(0.05)

    assert starts >= 3  # two attempts killed two workers
    dead = queue.get(deadly.id)
    assert dead.attempts == 2
    assert dead.last_error is not None and "was lost" in dead.last_error
    assert [a.outcome for a in queue.attempts(deadly.id)] == ["lost", "lost"]
    assert current is not None
    current.send_signal(signal.SIGTERM)
    assert finish(current)[0] == 0


@pytest.mark.slow
def test_the_lease_is_renewed_through_a_job_three_times_longer(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    job = queue.enqueue({"seconds": 4.5, "marker": str(marker)})
    holder = workers.start("--handler", "handlers:sleeps", "--lease", "1.5", "--worker-id", "a")
    wait_for(marker.exists, "the job to start")
    # A second worker claims (and rescues expired leases) all along: it must not get the job.
    rival = workers.start("--handler", "handlers:sleeps", "--lease", "1.5", "--worker-id", "b")

    wait_for(state_is(queue, job.id, "succeeded"), "the long job to finish")

    assert history(queue, job.id) == [(1, "a", "succeeded")]
    assert rival.poll() is None  # it was there, claiming, the whole time
    for proc in (holder, rival):
        proc.send_signal(signal.SIGTERM)
        assert finish(proc)[0] == 0


# -- options ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_burst_runs_the_ready_jobs_then_exits(queue: durq.JobQueue, workers: Workers) -> None:
    jobs = queue.enqueue_many([{"n": n} for n in range(3)])
    later = queue.enqueue({"n": 3}, delay=3600)

    code, err = finish(workers.start("--handler", "handlers:ok", "--burst"))

    assert code == 0, err
    assert [queue.get(j.id).state for j in jobs] == ["succeeded"] * 3
    assert queue.get(later.id).state == "queued"
    assert "burst: no job ready" in err
    assert finish(workers.start("--handler", "handlers:ok", "--burst"))[0] == 0


@pytest.mark.slow
def test_max_jobs_stops_after_that_many(queue: durq.JobQueue, workers: Workers) -> None:
    jobs = queue.enqueue_many([{"n": n} for n in range(3)])

    code, err = finish(workers.start("--handler", "handlers:ok", "--max-jobs", "2"))

    assert code == 0, err
    got = [queue.get(j.id) for j in jobs]
    assert [(j.state, j.attempts) for j in got] == [("succeeded", 1)] * 2 + [("queued", 0)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "cause"),
    [
        ("no_such_module_xyz:handle", "no module named 'no_such_module_xyz'"),
        ("handlers:missing", "no 'missing'"),
        ("handlers:not_callable", "not a function"),
        ("handlers", "use package.module:function"),
    ],
)
def test_a_handler_that_cannot_be_loaded_stops_the_worker_before_it_claims(
    queue: durq.JobQueue, workers: Workers, spec: str, cause: str
) -> None:
    job = queue.enqueue({"n": 1})

    code, err = finish(workers.start("--handler", spec))

    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert spec in err and cause in err
    untouched = queue.get(job.id)
    assert (untouched.state, untouched.attempts) == ("queued", 0)
    assert queue.attempts(job.id) == []
    assert queue.workers() == []


@pytest.mark.slow
def test_the_workers_registry_shows_the_worker_while_it_runs(
    queue: durq.JobQueue, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    job = queue.enqueue({"seconds": 60, "marker": str(marker)}, queue="mail")
    proc = workers.start(
        "--handler", "handlers:sleeps", "--queue", "mail", "--queue", "sms", "--worker-id", "w7"
    )
    wait_for(marker.exists, "the job to start")

    [seen] = queue.workers()
    assert (seen.id, seen.pid, seen.queues, seen.current_job_id) == (
        "w7",
        proc.pid,
        ("mail", "sms"),
        job.id,
    )
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # two signals sent at once would merge into one (POSIX does not queue them)
    proc.send_signal(signal.SIGTERM)
    assert finish(proc)[0] == 0
    assert queue.workers() == []


# -- in-process ------------------------------------------------------------------------------


class SignalOnDrain:
    """Delegates to a real queue; a stop signal arrives right as an outcome is written with
    the next claim, before the claimed job can start."""

    def __init__(self, queue: durq.JobQueue) -> None:
        self._queue = queue

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)

    def settle(self, *args: Any, **kwargs: Any) -> Any:
        written, claimed = self._queue.settle(*args, **kwargs)
        if claimed:
            os.kill(os.getpid(), signal.SIGTERM)  # delivered to the worker's handler
        return written, claimed


def test_a_job_claimed_as_the_stop_signal_arrives_is_released_not_run(
    queue: durq.JobQueue,
) -> None:
    first, second = queue.enqueue_many([{"n": 1}, {"n": 2}])
    ran: list[str] = []
    wrapped = SignalOnDrain(queue)
    worker = Worker(wrapped, lambda job: ran.append(job.id), worker_id="w1", concurrency=1)
    before = signal.getsignal(signal.SIGTERM)

    assert worker.run() == 0

    assert ran == [first.id]
    assert queue.get(first.id).state == "succeeded"
    after = queue.get(second.id)
    assert (after.state, after.attempts) == ("queued", 0)
    assert history(queue, second.id) == [(1, "w1", "released")]
    assert signal.getsignal(signal.SIGTERM) == before


def test_handlers_run_one_after_another_on_one_thread_beside_the_main_thread(
    queue: durq.JobQueue,
) -> None:
    queue.enqueue_many([{"n": n} for n in range(3)])
    threads: list[threading.Thread] = []
    worker = Worker(
        queue, lambda job: threads.append(threading.current_thread()), burst=True, concurrency=1
    )
    assert worker.run() == 0
    assert len(threads) == 3
    assert len(set(threads)) == 1 and threads[0] is not threading.main_thread()
    assert threads[0].daemon  # abandoning an overrunning handler must not block the exit
    assert {j.state for j in queue.list_jobs()} == {"succeeded"}


def test_load_handler_returns_the_function() -> None:
    import handlers  # tests/ is on sys.path under pytest

    assert load_handler("handlers:ok") is handlers.ok
    assert load_handler("os.path:join") is os.path.join


@pytest.mark.parametrize(
    ("spec", "cause"),
    [
        ("", "use package.module:function"),
        ("handlers:", "use package.module:function"),
        (":ok", "use package.module:function"),
        ("no_such_module_xyz:f", "no module named 'no_such_module_xyz'"),
        ("handlers:nope", "no 'nope' in it"),
        ("handlers:not_callable", "it is an int, not a function"),
    ],
)
def test_load_handler_says_what_is_wrong_in_one_line(spec: str, cause: str) -> None:
    with pytest.raises(HandlerError) as caught:
        load_handler(spec)
    message = str(caught.value)
    assert repr(spec) in message and cause in message
    assert "\n" not in message
    assert isinstance(caught.value, durq.DurqError)


def test_load_handler_reports_a_module_that_fails_on_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "explodes_on_import.py").write_text("raise RuntimeError('no config\\nat all')\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(HandlerError, match=r"^cannot import .*RuntimeError: no config$"):
        load_handler("explodes_on_import:handle")


@pytest.mark.parametrize(
    "options",
    [{"lease": 0}, {"grace": -1}, {"max_jobs": 0}, {"queues": ["bad name"]}, {"worker_id": " "}],
)
def test_bad_worker_options_are_refused(queue: durq.JobQueue, options: dict[str, Any]) -> None:
    with pytest.raises(WorkerError, match=r"^bad worker option: "):
        Worker(queue, print, **options)


@pytest.mark.slow
def test_sigterm_while_a_worker_starts_is_never_lost(
    queue: durq.JobQueue, workers: Workers
) -> None:
    """Whenever the signal lands (importing, connecting, starting the loop), the worker ends
    promptly; it never runs on as though nothing came."""
    rng = random.Random(5)
    for _ in range(8):
        proc = workers.start("--handler", "handlers:ok")
        time.sleep(rng.uniform(0.1, 0.8))
        proc.send_signal(signal.SIGTERM)
        code, log = finish(proc, timeout=15)
        # 0 once it handles signals; -SIGTERM if it came before Python set its handler.
        assert code in (0, -signal.SIGTERM), log
