"""The job a lone SQLite enqueue returns, whose fields are built when first read
(durq/backends/lazy_job.py); that it is a Job in every way is checked for every backend in
tests/contract/test_transitions.py. Here: a forked child, which inherits the build's lock."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

import durq
from durq.backends import lazy_job


def test_a_forked_child_reads_a_new_job_while_a_parent_thread_held_the_build_lock(
    tmp_path: Path,
) -> None:
    q = durq.connect(f"sqlite:///{tmp_path / 'q.db'}")
    q.enqueue({"warm": True})  # registers the queue: the next enqueue is a lone one
    job = q.enqueue({"n": 1})
    assert type(job) is lazy_job.LazyJob  # nothing read yet
    held, release = threading.Event(), threading.Event()

    def build_elsewhere() -> None:  # a parent thread inside another job's build at the fork
        with lazy_job._fill_lock:
            held.set()
            release.wait()

    thread = threading.Thread(target=build_elsewhere)
    thread.start()
    held.wait()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if job.payload == {"n": 1} and job.queue == "default" else 1
        finally:
            os._exit(code)
    release.set()
    thread.join()
    deadline = time.monotonic() + 10
    while (ended := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child waited for a lock its parent's thread held at the fork")
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(ended[1]) == 0
    assert job.payload == {"n": 1}
    q.close()
