"""How many jobs at once per worker process: durq's 4-process drain at several concurrencies.

    .venv/bin/python bench/concurrency.py [--levels 1,4,8,16,32,64] [--jobs 20000] [--reps 1]
                                          [--synchronous full] [--no-write] [--report]

Each level drains the same number of no-op jobs with four ``durq.worker.Worker`` processes
(``burst``, ``concurrency`` = the level), each started once other processes leave the CPUs
mostly idle, through the peers harness (``bench/peers_harness.py``:
fresh SQLite storage per drain, the clock from "go" to the last process's exit, every job
checked for running twice or never). The levels are interleaved when repeated. Writes the
table between the ``concurrency`` markers in docs/benchmarks.md and its numbers to
``var/bench-results/concurrency.json``, unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import docs_section
import peers_harness as harness
from durq.worker import DEFAULT_CONCURRENCY

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = 4


def measure(
    levels: list[int], jobs: int, reps: int, synchronous: str, quiet_wait: float = 120.0
) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    ws = harness.Workspace(ROOT / "var" / "peers-run" / f"concurrency-{stamp}", synchronous)
    systems = {
        level: harness.System(
            "durq",
            "sqlite",
            Path(sys.executable),
            f"concurrency={level}",
            (("BENCH_DURQ_CONCURRENCY", str(level)),),
        )
        for level in levels
    }
    runs: dict[int, list[dict[str, Any]]] = {level: [] for level in levels}
    try:
        for rep in range(reps):
            for level in harness.order(levels, rep):
                if quiet_wait:  # a shared machine: start when others are idle
                    harness.wait_for_quiet(max_wait=quiet_wait)
                result = harness.drain(ws, systems[level], jobs, PROCESSES)
                runs[level].append(vars(result))
                print(
                    f"rep {rep + 1}/{reps} concurrency {level:3}: {result.rate:8,.0f} jobs/s, "
                    f"twice {result.duplicates}, never {result.missing}",
                    flush=True,
                )
    finally:
        ws.close()
    return {
        "started": stamp,
        "jobs": jobs,
        "reps": reps,
        "processes": PROCESSES,
        "synchronous": synchronous,
        "default": DEFAULT_CONCURRENCY,
        "load_end": os.getloadavg()[0],
        "durq_source": docs_section.source_state(),
        "runs": {str(level): r for level, r in runs.items()},
    }


def report(data: dict[str, Any]) -> str:
    rates = {int(k): statistics.median(r["rate"] for r in v) for k, v in data["runs"].items()}
    best = max(rates.values())
    runs = f"median of {data['reps']} runs" if data["reps"] > 1 else "one run"
    day = dt.datetime.strptime(data["started"], "%Y%m%d-%H%M%S").strftime("%Y-%m-%d")
    lines = [
        "## Jobs at once per worker process (`bench/concurrency.py`)",
        "",
        f"durq's drain of {data['jobs']:,} no-op jobs by {data['processes']} `durq.worker.Worker` "
        f"processes (`burst`) on SQLite, `synchronous={data['synchronous'].upper()}`, at each "
        f"`concurrency`; {runs} each, {day}, load average {data['load_end']:.1f} at the end. The "
        f"default is {data['default']}.",
        "",
        "| concurrency | jobs/s | of the best | each run (jobs/s) | jobs run twice / never |",
        "|---:|---:|---:|---:|---:|",
    ]
    for level in sorted(rates):
        runs = data["runs"][str(level)]
        twice = sum(r["duplicates"] for r in runs)
        never = sum(r["missing"] for r in runs)
        mark = " (default)" if level == data["default"] else ""
        each = ", ".join(f"{r['rate']:,.0f}" for r in runs)
        lines.append(
            f"| {level}{mark} | {rates[level]:,.0f} | {rates[level] / best:.2f}x | {each} "
            f"| {twice} / {never} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,4,8,16,32,64", help="concurrencies to measure")
    parser.add_argument("--jobs", type=int, default=20000, help="jobs per drain")
    parser.add_argument("--reps", type=int, default=1, help="drains per level")
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs or var/")
    parser.add_argument(
        "--report", action="store_true", help="measure nothing: rewrite the table from var/"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="seconds to wait at most, before each drain, for other processes to leave the "
        "CPUs mostly idle (0: do not wait)",
    )
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.levels.split(",")]
    if args.report:
        data = docs_section.load_results("concurrency")
        if data is None:
            raise SystemExit("error: no var/bench-results/concurrency.json to report")
    else:
        data = measure(levels, args.jobs, args.reps, args.synchronous, args.quiet_wait)
    text = report(data)
    print("\n" + text)
    if not args.no_write:
        docs_section.write_section("concurrency", text)
        docs_section.save_results("concurrency", data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
