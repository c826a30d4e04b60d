"""Programs the contract tests run in processes of their own (real processes, real signals).

    python _procs.py drain URL WORKER_ID OUT_FILE GATE_DIR
    python _procs.py drain_batches URL WORKER_ID OUT_FILE GATE_DIR
    python _procs.py hammer URL WORKER_ID ROUNDS GATE_DIR
    python _procs.py dedupe URL WORKER_ID OUT_FILE GATE_DIR
    python _procs.py hold URL WORKER_ID LEASE QUEUE:COUNT...
    python _procs.py enqueue_and_die URL one|many

Each writes what it did to stdout or OUT_FILE; an exception escapes as a traceback on stderr
and a non-zero exit, which the tests look for.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import durq


def wait_at_gate(gate: Path, worker_id: str) -> None:
    """Say "ready", then wait for the test's "go", so that every process starts at once."""
    (gate / f"{worker_id}.ready").touch()
    deadline = time.monotonic() + 120
    while not (gate / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go from the test")
        time.sleep(0.01)


def drain(url: str, worker_id: str, out: str, gate: str) -> None:
    """Claim and complete until nothing is left; half the jobs through each draining path."""
    wait_at_gate(Path(gate), worker_id)
    done: list[str] = []
    with durq.connect(url) as q:
        job = q.claim(worker_id, lease=120)
        while job is not None:
            done.append(job.id)
            if job.payload["n"] % 2:
                _, job = q.complete_and_claim(job, worker_id, worker_id=worker_id, lease=120)
            else:
                q.complete(job, worker_id)
                job = q.claim(worker_id, lease=120)
    Path(out).write_text("".join(f"{i}\n" for i in done))


def drain_batches(url: str, worker_id: str, out: str, gate: str) -> None:
    """Claim up to 7 jobs at a time; settle them all with the next claim, as a worker with
    seven slots does."""
    wait_at_gate(Path(gate), worker_id)
    done: list[str] = []
    with durq.connect(url) as q:
        jobs = q.claim_many(worker_id, lease=120, limit=7)
        while jobs:
            done.extend(job.id for job in jobs)
            done_now = durq.Outcome.SUCCEEDED
            finished = [durq.Finished(job, done_now, result=worker_id) for job in jobs]
            answers, jobs = q.settle(finished, worker_id=worker_id, lease=120, claim=7)
            assert all(isinstance(a, durq.Job) for a in answers), answers
    Path(out).write_text("".join(f"{i}\n" for i in done))


def hammer(url: str, worker_id: str, rounds: str, gate: str) -> None:
    """Many writers on one database at once: enqueue, claim, complete, and read stats."""
    wait_at_gate(Path(gate), worker_id)
    with durq.connect(url) as q:
        q.worker_heartbeat(worker_id, host=socket.gethostname(), pid=os.getpid(), queues=None)
        for n in range(int(rounds)):
            q.enqueue({"by": worker_id, "n": n})
            job = q.claim(worker_id, lease=120)
            if job is not None:
                q.complete(job, {"by": worker_id})
            if n % 10 == 0:
                q.stats()
                q.list_jobs(limit=20)
        q.worker_stopped(worker_id)


def dedupe(url: str, worker_id: str, out: str, gate: str) -> None:
    """Submit the same keyed jobs as every other process, at the same moment."""
    wait_at_gate(Path(gate), worker_id)
    with durq.connect(url) as q:
        ids = [q.enqueue({"by": worker_id}, dedupe_key=f"key-{k}").id for k in range(30)]
    Path(out).write_text("\n".join(ids))


def hold(url: str, worker_id: str, lease: str, *wanted: str) -> None:
    """Claim jobs, say which, then hang on to them until killed."""
    q = durq.connect(url)
    for spec in wanted:
        name, _, count = spec.partition(":")
        for _ in range(int(count)):
            job = q.claim(worker_id, queues=[name], lease=float(lease))
            assert job is not None, f"nothing to claim in {name}"
            print(job.id, flush=True)
    print("holding", flush=True)
    time.sleep(600)


def enqueue_and_die(url: str, how: str) -> None:
    """Enqueue, print the ids, and die at once: no close, no atexit, no flush of anything."""
    q = durq.connect(url)
    if how == "many":
        ids = [job.id for job in q.enqueue_many([{"n": 1}, {"n": 2}, {"n": 3}], queue="many")]
    else:
        ids = [q.enqueue({"n": 0}, queue="one").id]
    print(" ".join(ids), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    programs = {
        "drain": drain,
        "drain_batches": drain_batches,
        "hammer": hammer,
        "dedupe": dedupe,
        "hold": hold,
        "enqueue_and_die": enqueue_and_die,
    }
    programs[command](*arguments)
