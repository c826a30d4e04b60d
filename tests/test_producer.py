"""The demo producer: regular submissions, logging each id, and a clean stop on a signal."""

from __future__ import annotations

import logging
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import durq
from durq.producer import Producer


@pytest.fixture
def queue_url(tmp_path: Path) -> str:
    """SQLite only, overriding conftest's every-backend fixture: the CLI talks to ``JobQueue``
    alone, and test_cli_backends.py runs its end-to-end paths against every backend."""
    return f"sqlite:///{tmp_path}/durq.db"


def counter(rng: random.Random) -> dict[str, int]:
    return {"n": rng.randint(0, 1_000_000)}


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_count_submits_that_many_and_logs_each_id(
    queue: durq.JobQueue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durq.producer")
    first_payload = counter(random.Random(7))
    producer = Producer(queue, counter, queue_name="p", interval=0, count=3, rng=random.Random(7))
    assert producer.run() == 0
    jobs = queue.list_jobs()
    assert len(jobs) == producer.submitted == 3
    assert {j.queue for j in jobs} == {"p"}
    assert jobs[-1].payload == first_payload  # the rng given is the one used
    logged = re.findall(r"enqueued job (\S+)", caplog.text)
    assert sorted(logged) == sorted(j.id for j in jobs)
    assert "count reached" in caplog.text


def test_request_stop_ends_an_endless_run(queue: durq.JobQueue) -> None:
    producer = Producer(queue, counter, interval=0.01)
    thread = threading.Thread(target=producer.run)  # not the main thread: no signal handlers
    thread.start()
    wait_for(lambda: producer.submitted >= 3)
    producer.request_stop()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert len(queue.list_jobs(limit=1000)) == producer.submitted


def test_a_long_interval_ends_at_once_on_stop(queue: durq.JobQueue) -> None:
    producer = Producer(queue, counter, interval=3600)
    thread = threading.Thread(target=producer.run)
    thread.start()
    wait_for(lambda: producer.submitted == 1)
    producer.request_stop()
    thread.join(timeout=20)  # not an hour
    assert not thread.is_alive()
    assert len(queue.list_jobs()) == 1


def test_signal_handlers_are_restored(queue: durq.JobQueue) -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    Producer(queue, counter, interval=0, count=1).run()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_bad_arguments(queue: durq.JobQueue) -> None:
    with pytest.raises(ValueError, match="interval"):
        Producer(queue, counter, interval=-1)
    with pytest.raises(ValueError, match="count"):
        Producer(queue, counter, count=-1)


def test_a_bad_payload_stops_the_producer_with_the_error(queue: durq.JobQueue) -> None:
    producer = Producer(queue, lambda rng: {"x": float("nan")}, interval=0, count=2)
    with pytest.raises(durq.InvalidJob):
        producer.run()
    assert queue.list_jobs() == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_durq_produce_stops_cleanly_on_a_signal(
    queue: durq.JobQueue, queue_url: str, python_env: dict[str, str], sig: int
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "durq", "--db", queue_url, "produce", "--interval", "0.05"],
        env=python_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(queue.list_jobs()) >= 3 or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "producer stopped (stop requested)" in err
    # Every job it logged is stored and every stored job was logged: nothing half-submitted.
    logged = re.findall(r"enqueued job (\S+)", err)
    stored = [j.id for j in queue.list_jobs(limit=1000)]
    assert len(logged) >= 3
    assert sorted(logged) == sorted(stored)
