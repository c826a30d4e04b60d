"""durq against the queues people would pick instead, side by side in one run.

``make bench-peers`` runs this with the project's venv. It installs the peers (persist-queue,
huey, litequeue on SQLite; procrastinate, pgqueuer on PostgreSQL) in their own venv under
``var/peers-venv`` (never durq's dependencies), starts PostgreSQL if it is down, runs every
workload for every queue with the libraries interleaved, writes the tables into
docs/benchmarks.md and draws the drains as docs/drain.svg. ``--quick`` is a smoke run (small
N, one repetition, tables to stdout). The raw results also go to
``var/bench-results/peers.json``, which ``bench/targets.py`` reads.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import docs_section
import peers_harness as harness
import peers_report as report
from peers_profile import main as summarize_run_main

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / "var" / "peers-venv"
# Pinned so that a rerun measures the same code; bump deliberately.
PEERS = [
    "persist-queue==1.1.0",
    "huey==3.5.4",
    "litequeue==0.9",
    "procrastinate==3.10.0",
    "pgqueuer==1.6.0",
    "asyncpg==0.32.0",
    "psycopg[binary,pool]==3.3.9",
]
DEFAULT_JOBS = 20000  # jobs per drain in a full run
# The I/O-bound drain (issue "worker runtime", target 3): one process, 100 jobs at once,
# each sleeping 100 ms, so 1,000 jobs/s is the ceiling.
IO_JOBS, IO_CONCURRENCY, IO_SLEEP = 2000, 100, 0.1
SQLITE_PEERS = ["huey", "persist-queue", "litequeue"]
POSTGRES_PEERS = ["procrastinate", "pgqueuer"]


def ensure_peers_venv() -> Path:
    """The peers' python, installing them first if the venv is missing or out of date."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".peers-installed"
    wanted = "\n".join(PEERS) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"installing the peers into {PEERS_VENV} ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *PEERS], check=True)
    stamp.write_text(wanted)
    return python


def ensure_py_spy(peers_python: Path) -> Path:
    """py-spy, a sampling profiler, installed beside the peers (not a durq dependency)."""
    py_spy = peers_python.parent / "py-spy"
    if not py_spy.exists():
        pip = [str(peers_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "py-spy==0.4.3"], check=True)
    return py_spy


def ensure_postgres() -> bool:
    """Start the local cluster if it is down; whether it answers."""

    def ready() -> bool:
        return (
            subprocess.run(["pg_isready", "-q", *harness.PG_HOST[:4]], check=False).returncode == 0
        )

    try:
        if ready():
            return True
        versions = sorted(
            os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")]
        )
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=False,
        )
    except (OSError, IndexError, ValueError):
        return False
    for _ in range(30):
        if ready():
            return True
        time.sleep(1)
    return False


class LoadSampler:
    """The 1-minute load average every 5 s while the benchmark runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(5.0):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return sum(self.samples) / len(self.samples) if self.samples else os.getloadavg()[0]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small N, 1 repetition")
    parser.add_argument("--reps", type=int, help="repetitions (default 3; --quick: 1)")
    parser.add_argument("--jobs", type=int, help="jobs per drain (default 20000; --quick: 1000)")
    parser.add_argument(
        "--enqueue-jobs", type=int, help="jobs for one-commit enqueue (default 2000; quick 200)"
    )
    parser.add_argument(
        "--latency-samples", type=int, help="pickups timed per repetition (default 100; quick 10)"
    )
    parser.add_argument(
        "--io-jobs", type=int, help="jobs in the I/O-bound drain (default 2000; quick 200)"
    )
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    parser.add_argument(
        "--only",
        help="comma-separated subset of: durq, " + ", ".join(SQLITE_PEERS + POSTGRES_PEERS),
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite queues only")
    parser.add_argument(
        "--no-pgqueuer-batch-1",
        dest="pgqueuer_batch_1",
        action="store_false",
        help="skip the extra pgqueuer run that dequeues one job at a time",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        help="where to write the table (default docs/benchmarks.md; --quick: nowhere)",
    )
    parser.add_argument("--load-note", default="", help="a sentence about other load, for docs")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        help="before each measurement, wait up to this many seconds for other processes to "
        "leave the CPUs mostly idle (0: do not wait; default 120, --quick: 0)",
    )
    parser.add_argument(
        "--durq-loop",
        choices=["worker", "calls"],
        default="worker",
        help="durq's drain: durq.worker.Worker (default), or its bare claim/complete_and_claim",
    )
    parser.add_argument(
        "--durq-concurrency",
        type=int,
        help="jobs at once per durq worker process (default: durq's DEFAULT_CONCURRENCY)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record every drain consumer with py-spy (var/peers-run/<run>/profiles)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.reps = args.reps or (1 if quick else 3)
    args.jobs = args.jobs or (1000 if quick else DEFAULT_JOBS)
    args.enqueue_jobs = args.enqueue_jobs or (200 if quick else 2000)
    args.latency_samples = args.latency_samples or (10 if quick else 100)
    args.io_jobs = args.io_jobs or (200 if quick else IO_JOBS)
    if args.quiet_wait is None:
        args.quiet_wait = 0.0 if quick else 120.0
    if args.docs is None and not quick:
        args.docs = ROOT / "docs" / "benchmarks.md"
    return args


def systems_for(
    args: argparse.Namespace, peers_python: Path, postgres: bool
) -> list[harness.System]:
    ours = Path(sys.executable)
    wanted = set(args.only.split(",")) if args.only else None
    # durq's I/O-bound drain runs its task as a plain function (threads) by default; this
    # variant runs it as an ``async def`` on the worker's event loop.
    async_tasks = ("async tasks", (("BENCH_DURQ_TASKS", "async"),), ("io",))
    systems = [harness.System("durq", "sqlite", ours)]
    systems.append(harness.System("durq", "sqlite", ours, *async_tasks))
    systems += [harness.System(name, "sqlite", peers_python) for name in SQLITE_PEERS]
    if postgres:
        systems.append(harness.System("durq", "postgresql", ours))
        systems.append(harness.System("durq", "postgresql", ours, *async_tasks))
        systems += [harness.System(name, "postgresql", peers_python) for name in POSTGRES_PEERS]
        if args.pgqueuer_batch_1:
            # pgqueuer taking one job per dequeue: how much of its speed is batching?
            one = (("BENCH_PGQUEUER_BATCH", "1"),)
            drains = ("drain1", "drain4")
            systems.append(
                harness.System("pgqueuer", "postgresql", peers_python, "batch_size=1", one, drains)
            )
    return [s for s in systems if wanted is None or s.adapter in wanted]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    peers_python = ensure_peers_venv()
    postgres = not args.no_postgres and ensure_postgres()
    if not args.no_postgres and not postgres:
        print("PostgreSQL is not reachable on 127.0.0.1:5432: SQLite queues only", flush=True)
    systems = systems_for(args, peers_python, postgres)
    os.environ["BENCH_DURQ_LOOP"] = args.durq_loop  # read by bench/peers_durq.py
    if args.durq_concurrency:
        os.environ["BENCH_DURQ_CONCURRENCY"] = str(args.durq_concurrency)
    io = harness.IoWork(IO_CONCURRENCY, IO_SLEEP)

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    ws = harness.Workspace(ROOT / "var" / "peers-run" / stamp, args.synchronous)
    if args.profile:
        ws.profiler = ensure_py_spy(peers_python)
    results: dict[str, Any] = {
        "systems": {},
        "enqueue": {},
        "enqueue_batch": {},
        "drain1": {},
        "drain4": {},
        "latency": {},
        "io": {},
        "errors": [],
    }
    for system in list(systems):
        found = harness.info(ws, system)
        results["systems"][system.label] = {
            "adapter": system.adapter,
            "backend": system.backend,
            **found,
        }
        if "error" in found:
            print(f"skipping {system.label}: {found['error']}", flush=True)
            results["errors"].append(f"{system.label} not run: {found['error']}")
            systems.remove(system)

    workloads: list[tuple[str, Callable[[harness.System], Any]]] = [
        ("enqueue", lambda s: harness.enqueue_rate(ws, s, args.enqueue_jobs, batch=False)),
        ("enqueue_batch", lambda s: harness.enqueue_rate(ws, s, args.jobs, batch=True)),
        ("drain1", lambda s: harness.drain(ws, s, args.jobs, 1)),
        ("drain4", lambda s: harness.drain(ws, s, args.jobs, 4)),
        ("latency", lambda s: harness.pickup_latencies(ws, s, args.latency_samples)),
        ("io", lambda s: harness.drain(ws, s, args.io_jobs, 1, io)),
    ]
    sampler = LoadSampler()
    quiet = {"waited": 0.0, "busy_starts": 0, "measurements": 0}
    try:
        for rep in range(args.reps):
            for key, measure in workloads:
                for system in harness.order(systems, rep):
                    if key == "enqueue_batch" and not results["systems"][system.label]["batch"]:
                        continue  # the library has no batch enqueue
                    if system.only and key not in system.only:
                        continue  # a variant differs from its library in these only
                    if key == "io" and not results["systems"][system.label]["io"]:
                        continue  # not asked of this library
                    if args.quiet_wait:
                        waited, busy = harness.wait_for_quiet(max_wait=args.quiet_wait)
                        quiet["waited"] += waited
                        quiet["busy_starts"] += busy >= 0.25
                        quiet["measurements"] += 1
                    t0 = time.monotonic()
                    try:
                        value = measure(system)
                    except (harness.BenchError, subprocess.SubprocessError) as exc:
                        message = f"rep {rep + 1}, {key}, {system.label}: {exc}"
                        print("FAILED " + message, flush=True)
                        results["errors"].append(message)
                        continue
                    bucket = results[key].setdefault(system.label, [])
                    if key == "latency":
                        bucket.extend(value)
                        shown = f"p50 {report.percentile(value, 0.5) * 1000:.2f} ms"
                    elif isinstance(value, harness.DrainResult):
                        bucket.append(vars(value))
                        shown = (
                            f"{value.rate:,.0f} jobs/s, twice {value.duplicates}, "
                            f"never {value.missing}"
                        )
                    else:
                        bucket.append(value)
                        shown = f"{value:,.0f} jobs/s"
                    print(
                        f"rep {rep + 1}/{args.reps} {key:13} {system.label:23} {shown}"
                        f"  ({time.monotonic() - t0:.1f} s)",
                        flush=True,
                    )
    finally:
        load_mean = sampler.stop()
        ws.close()

    results["meta"] = {
        "argv": argv,
        "started": started_at,
        "minutes": (time.monotonic() - started) / 60,
        "machine": report.machine(),
        "load": {"start": load_start, "end": os.getloadavg()[0], "mean": load_mean},
        "load_note": args.load_note,
        "quiet": {**quiet, "max_wait": args.quiet_wait},
        "reps": args.reps,
        "jobs": args.jobs,
        "default_jobs": DEFAULT_JOBS,
        "enqueue_jobs": args.enqueue_jobs,
        "latency_samples": args.latency_samples,
        "io": {"jobs": args.io_jobs, "concurrency": io.concurrency, "sleep": io.sleep},
        "synchronous": args.synchronous,
        "durq_loop": args.durq_loop,
        "durq_source": docs_section.source_state(),
    }
    if args.profile:
        # One summary per drain, its consumer processes' samples added up.
        summarize_run_main([str(ws.root)])
    raw = ws.root / "results.json"
    raw.write_text(json.dumps(results, indent=1))
    block = report.render(results)
    print("\n" + block + "\n")
    for text, measured, ratio, met in report.targets(results):
        verdict = "not measured" if met is None else ("met" if met else "MISSED")
        print(f"target: {text}: {measured} {ratio}: {verdict}")
    print(f"raw results: {raw.relative_to(ROOT)}")
    if args.docs:
        report.write_docs(args.docs, block)
        chart = args.docs.parent / "drain.svg"
        chart.write_text(report.drain_chart(results))
        docs_section.save_results("peers", results)
        print(f"tables written to {args.docs}, chart to {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
