"""The idle worker: what it costs while it waits, and how soon it starts a job.

One real worker process (``python -m durq worker --handler pickup:record``, default
concurrency) waits on an empty queue. First its CPU time is read from ``/proc/PID/stat``
over ``--idle-seconds`` of waiting (nothing enqueued). Then the parent enqueues one job at a
time, after a pause long enough for the worker to be idle again, and the handler records
``time.time()`` as it starts, in the job's result. Pickup = handler start - the moment
``enqueue`` returned (the job is durable then), so the commit itself is not counted; both
clocks are the same machine's wall clock.

    .venv/bin/python bench/pickup.py [--db URL] [--jobs 200] [--idle-seconds 30] [--no-write]

Without ``--db`` it uses a fresh SQLite file in a temporary directory. With ``--db`` it uses
that database as it is (creating durq's tables if they are missing) and its own queue,
``pickup``, whose finished jobs it leaves behind. Writes the table between the ``pickup``
markers (``pickup-postgresql`` for PostgreSQL) in docs/benchmarks.md and its numbers to
``var/bench-results/`` under the same name (``--no-write`` does neither). Target 6 of the
worker-runtime issue: at most 1 % of a core while idle, and a median pickup of at most 5 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import docs_section
import durq
from peers_harness import wait_for_quiet

HERE = Path(__file__).resolve().parent
QUEUE = "pickup"  # its own queue, so a shared database's other jobs do not interfere
TARGET_MEDIAN_MS = 5.0  # median pickup on an idle queue
TARGET_IDLE_CPU = 0.01  # share of one core an idle worker may use


def record(job: durq.Job) -> dict[str, Any]:
    """The handler the benchmark's worker runs: when did this job start?"""
    return {"started": time.time()}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (``/proc/PID/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def measure(
    url: str, jobs: int, seed: int, idle_seconds: float
) -> tuple[list[float], list[float], float]:
    """Pickup latencies in seconds (since ``enqueue`` returned, and since it was called), and
    the share of one core the worker used while idle."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    rng = random.Random(seed)
    queue = durq.connect(url)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durq",
            "--db",
            url,
            "worker",
            "--handler",
            "pickup:record",
            "--queue",
            QUEUE,
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Warm up: the worker is started, connected and has run one job.
        first = queue.enqueue({"n": -1}, queue=QUEUE)
        _common.wait_until(
            lambda: queue.get(first.id).state == "succeeded", 60, "the worker to start", every=0.001
        )
        idle_cpu = 0.0
        if idle_seconds > 0:
            time.sleep(1.0)  # the worker has written the warm-up job's outcome and gone idle
            cpu_before, wall_before = cpu_seconds(worker.pid), time.monotonic()
            time.sleep(idle_seconds)
            idle_cpu = (cpu_seconds(worker.pid) - cpu_before) / (time.monotonic() - wall_before)
        acked, called = [], []
        for n in range(jobs):
            time.sleep(rng.uniform(0.02, 0.06))  # the worker is idle, waiting for a change
            before = time.time()
            job = queue.enqueue({"n": n}, queue=QUEUE)
            after = time.time()
            done = _common.wait_until(
                lambda job=job: (j := queue.get(job.id)).state == "succeeded" and j,
                30,
                f"job {n}",
                every=0.001,
            )
            acked.append(done.result["started"] - after)
            called.append(done.result["started"] - before)
        return acked, called, idle_cpu
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        queue.close()


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(url: str, acked: list[float], called: list[float], idle: float, seconds: float) -> str:
    backend = url.partition("://")[0]
    rows = [
        "| measured from | median (ms) | p90 (ms) | p99 (ms) | max (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, values in (("`enqueue` returned", acked), ("`enqueue` called", called)):
        rows.append(
            f"| {label} | {1000 * statistics.median(values):.2f} | {_ms(values, 0.9):.2f} "
            f"| {_ms(values, 0.99):.2f} | {max(values) * 1000:.2f} |"
        )
    median = 1000 * statistics.median(acked)
    load = os.getloadavg()[0]
    verdict = "meets" if median <= TARGET_MEDIAN_MS else "misses"
    idle_verdict = "meets" if idle <= TARGET_IDLE_CPU else "misses"
    waits = {
        "sqlite": "inotify on the database's folder, then `PRAGMA data_version`",
        "postgresql": "LISTEN/NOTIFY",
    }.get(backend, backend)
    return "\n".join(
        [
            "## The idle worker: CPU and pickup latency (`bench/pickup.py`)",
            "",
            f"One `durq worker` process (default concurrency) idle on an empty {backend} "
            f"queue. Its waker thread sleeps in `JobQueue.wait_for_change` ({waits}) and "
            "the control loop claims as soon as it reports a change.",
            "",
            f"**Idle CPU:** {100 * idle:.2f} % of one core over {seconds:g} s of waiting "
            f"(user + system time from `/proc/PID/stat`): {idle_verdict} the target of at most "
            f"{100 * TARGET_IDLE_CPU:g} %.",
            "",
            f"**Pickup:** {len(acked)} jobs enqueued one at a time, 20-60 ms apart; pickup = "
            "the handler's start minus the enqueue.",
            "",
            *rows,
            "",
            f"Median {median:.2f} ms: {verdict} the target of at most {TARGET_MEDIAN_MS:g} ms. "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"{os.cpu_count()} CPUs, load average {load:.1f} at the end (other processes "
            f"share the CPUs: the tail is their scheduling), "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="queue URL (default: a fresh SQLite file)")
    parser.add_argument("--jobs", type=int, default=200, help="jobs to time (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--idle-seconds", type=float, default=30.0, help="idle time to read CPU over (30)"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="seconds to wait at most, first, for other processes to leave the CPUs mostly "
        "idle (0: do not wait)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch docs or var/")
    args = parser.parse_args(argv)
    if args.idle_seconds > 0 and args.quiet_wait > 0:
        # A shared machine: others' load would show in both numbers.
        wait_for_quiet(max_wait=args.quiet_wait)
    with tempfile.TemporaryDirectory(prefix="durq-pickup-") as tmp:
        url = args.db or f"sqlite:///{tmp}/durq.db"
        acked, called, idle = measure(url, args.jobs, args.seed, args.idle_seconds)
    text = report(url, acked, called, idle, args.idle_seconds)
    print(text)
    if not args.no_write:
        backend = url.partition("://")[0]
        name = "pickup" if backend == "sqlite" else f"pickup-{backend}"
        docs_section.write_section(name, text)
        docs_section.save_results(
            name,
            {
                "backend": backend,
                "acked": acked,
                "called": called,
                "idle_cpu": idle,
                "idle_seconds": args.idle_seconds,
                "date": time.strftime("%Y-%m-%d", time.gmtime()),
                "durq_source": docs_section.source_state(),
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
