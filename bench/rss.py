"""Worker memory: the resident set of a real ``durq worker`` process at a given concurrency.

    .venv/bin/python bench/rss.py [--levels 8,32,100] [--jobs-per-slot 5] [--no-write]

For each level a fresh SQLite queue and one ``python -m durq worker --handler
worker_tasks:nap --concurrency N`` process. Its memory is read from ``/proc/PID/status``
(``VmRSS``, resident now; ``VmHWM``, the peak) once it has registered (started, idle), then
again after it has run ``jobs-per-slot x N`` jobs that each sleep 50 ms, so that all ``N``
slots ran at once (the handler returns its thread's name; the script checks that ``N``
threads ran jobs). Target 5 of the worker-runtime issue: at most 40 MiB at concurrency 8.
Writes the table between the ``rss`` markers in docs/benchmarks.md and its numbers to
``var/bench-results/rss.json``, unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import docs_section
import durq

HERE = Path(__file__).resolve().parent
TARGET_MIB = 40.0
TARGET_LEVEL = 8
NAP = 0.05  # seconds each job sleeps


def memory(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM (and the thread count) of a live process, in MiB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
        elif key == "Threads":
            found[key] = int(value)
    return found


def measure(level: int, jobs_per_slot: int, folder: Path) -> dict[str, Any]:
    url = f"sqlite:///{folder / f'rss-{level}.db'}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    queue = durq.connect(url)
    command = [sys.executable, "-m", "durq", "--db", url, "worker"]
    command += ["--handler", "worker_tasks:nap", "--concurrency", str(level)]
    worker = subprocess.Popen(
        command,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        _common.wait_until(queue.workers, 60, "the worker to register", every=0.05)
        time.sleep(0.5)  # settled into its idle wait
        started = memory(worker.pid)
        jobs = queue.enqueue_many([{"sleep": NAP}] * (jobs_per_slot * level))
        done = []
        for job in jobs:
            done.append(
                _common.wait_until(
                    lambda job=job: _finished(queue, job), 120, "the jobs", every=0.05
                )
            )
        threads = {j.result["thread"] for j in done if isinstance(j.result, dict)}
        after = memory(worker.pid)
        if worker.poll() is not None:
            raise SystemExit(f"error: the worker exited {worker.returncode}")
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        queue.close()
    return {
        "level": level,
        "jobs": len(jobs),
        "task_threads": len(threads),
        "started": started,
        "after": after,
    }


def _finished(queue: durq.JobQueue, job: durq.Job) -> durq.Job | None:
    current = queue.get(job.id)
    if current.state == "succeeded":
        return current
    if current.state not in ("queued", "running"):
        raise SystemExit(f"error: job {job.id} ended {current.state}: {current.last_error}")
    return None


def report(data: dict[str, Any]) -> str:
    rows = [
        "| `--concurrency` | jobs run | task threads that ran them | RSS idle at start (MiB) "
        "| RSS after the jobs (MiB) | peak RSS (MiB) | threads |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdict = ""
    for run in data["runs"]:
        after = run["after"]
        rows.append(
            f"| {run['level']} | {run['jobs']:,} | {run['task_threads']} "
            f"| {run['started']['VmRSS']:.1f} | {after['VmRSS']:.1f} | {after['VmHWM']:.1f} "
            f"| {after['Threads']:.0f} |"
        )
        if run["level"] == TARGET_LEVEL:
            met = after["VmHWM"] <= TARGET_MIB
            verdict = (
                f"Peak at concurrency {TARGET_LEVEL}: {after['VmHWM']:.1f} MiB, "
                f"{'meets' if met else 'misses'} the target of at most {TARGET_MIB:g} MiB "
                f"({after['VmHWM'] / TARGET_MIB:.2f}x of it)."
            )
    return "\n".join(
        [
            "## Worker memory (`bench/rss.py`)",
            "",
            "One `durq worker --handler worker_tasks:nap --concurrency N` process per row, on "
            "a fresh SQLite queue: its resident memory from `/proc/PID/status` once it is "
            f"registered and idle, then after running {data['jobs_per_slot']} x N jobs of "
            f"{NAP * 1000:g} ms each (all N slots busy at once: the task-thread column counts "
            "the threads that ran jobs). Peak = `VmHWM`.",
            "",
            *rows,
            "",
            f"{verdict} Python {data['python']}, {data['date']}.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="8,32,100", help="concurrencies to measure")
    parser.add_argument("--jobs-per-slot", type=int, default=5, help="jobs per slot")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs or var/")
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="durq-rss-") as tmp:
        for level in (int(x) for x in args.levels.split(",")):
            run = measure(level, args.jobs_per_slot, Path(tmp))
            runs.append(run)
            print(
                f"concurrency {level}: {run['after']['VmRSS']:.1f} MiB after "
                f"{run['jobs']} jobs on {run['task_threads']} threads "
                f"(peak {run['after']['VmHWM']:.1f}, idle at start {run['started']['VmRSS']:.1f})",
                flush=True,
            )
    data = {
        "runs": runs,
        "jobs_per_slot": args.jobs_per_slot,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "target_mib": TARGET_MIB,
        "target_level": TARGET_LEVEL,
        "durq_source": docs_section.source_state(),
    }
    text = report(data)
    print("\n" + text)
    if not args.no_write:
        docs_section.write_section("rss", text)
        docs_section.save_results("rss", data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
