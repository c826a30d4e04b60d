"""The worker-runtime issue's targets, each with its latest measured value: one table.

    .venv/bin/python bench/targets.py [--no-write]

Reads the raw numbers the benchmark scripts keep in ``var/bench-results/`` (``peers.json``
from ``bench/peers.py``: targets 1-3; ``core.json`` from ``bench/bench.py``: 4; ``rss.json``
from ``bench/rss.py``: 5; ``pickup.json`` from ``bench/pickup.py``: 6) and writes the table
between the ``targets`` markers in docs/benchmarks.md. A script not run here yet leaves its
rows "not measured". It measures nothing itself; the Makefile's bench targets run it last.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import docs_section
import peers_report

Row = tuple[str, str, str, str, bool | None, str]  # (no., target, measured, ratio, met, source)


def _code(data: dict[str, Any]) -> str:
    """Which durq the numbers are of (see ``docs_section.source_state``)."""
    return f", durq `{data['durq_source']}`" if data.get("durq_source") else ""


def peers_rows(peers: dict[str, Any] | None) -> list[Row]:
    numbers = ["1", "1", "1", "2", "3", "3"]
    if peers is None:
        texts = [
            "SQLite (`synchronous=FULL`), 4 processes, no-op task: ≥ 3x huey's 4-process drain",
            "… and ≥ 10,000 jobs/s",
            "… and no job run twice or lost",
            "PostgreSQL, 4 processes: ≥ 1.5x pgqueuer's default `QueueManager` drain",
            "I/O-bound (1 process, concurrency 100, 2,000 x 100 ms), thread tasks: ≥ 0.8x ideal",
            "I/O-bound, async tasks: ≥ 0.8x ideal",
        ]
        return [
            (n, t, "—", "—", None, "`make bench-peers`")
            for n, t in zip(numbers, texts, strict=True)
        ]
    meta = peers["meta"]
    source = f"`make bench-peers`, {meta['started'][:10]}, {meta['reps']} reps interleaved"
    source += _code(meta)
    rows: list[Row] = []
    for n, (text, measured, ratio, met) in zip(numbers, peers_report.targets(peers), strict=False):
        rows.append((n, text, measured, ratio, met, source))
    return rows


def core_rows(core: dict[str, Any] | None) -> list[Row]:
    rows: list[Row] = []
    for key, what in (
        ("enqueue", "`enqueue`"),
        ("enqueue_many", "`enqueue_many` (batches of 1,000)"),
    ):
        least = 0.9 if key == "enqueue" else 0.5
        text = f"{what} ≥ {least:g}x the plain-sqlite3 floor (`synchronous=FULL`)"
        if core is None or f"{key} full" not in core["ratios"]:
            rows.append(("4", text, "—", "—", None, "`make bench`"))
            continue
        ours, floor = core["rates"][f"{key} full durq"], core["rates"][f"{key} full floor"]
        ratio = core["ratios"][f"{key} full"]
        script = "`bench.py --producer`" if core.get("producer_only") else "`make bench`"
        source = f"{script}, {core['date']}, {core['sizes']['reps']} reps interleaved"
        source += _code(core)
        measured = f"{ours:,.0f} vs {floor:,.0f} jobs/s"
        runs = core.get("ratio_runs", {}).get(f"{key} full") or []
        if len(runs) > 1:
            measured += f" (ratio per run {min(runs):.2f}-{max(runs):.2f}x)"
        rows.append(("4", text, measured, f"{ratio:.2f}x", ratio >= least, source))
    return rows


def rss_rows(rss: dict[str, Any] | None) -> list[Row]:
    text = "worker RSS ≤ 40 MiB at `--concurrency 8` (after running jobs)"
    if rss is None:
        return [("5", text, "—", "—", None, "`make bench-worker`")]
    source = f"`bench/rss.py`, {rss['date']}{_code(rss)}"
    limit, level = rss["target_mib"], rss["target_level"]
    rows: list[Row] = []
    for run in rss["runs"]:
        peak = run["after"]["VmHWM"]
        if run["level"] == level:
            rows.insert(
                0,
                ("5", text, f"{peak:.1f} MiB peak", f"{peak / limit:.2f}x", peak <= limit, source),
            )
        else:
            rows.append(
                (
                    "5",
                    f"… reported at `--concurrency {run['level']}`",
                    f"{peak:.1f} MiB peak",
                    "",
                    None,
                    source,
                )
            )
    return rows


def pickup_rows(pickup: dict[str, Any] | None) -> list[Row]:
    cpu_text = "idle `durq worker` ≤ 1 % of a core"
    latency_text = "… while picking up a new job in ≤ 5 ms (median)"
    if pickup is None:
        return [
            ("6", cpu_text, "—", "—", None, "`make bench-worker`"),
            ("6", latency_text, "—", "—", None, "`make bench-worker`"),
        ]
    source = f"`bench/pickup.py`, {pickup['date']}{_code(pickup)}"
    idle = pickup["idle_cpu"]
    median = 1000 * statistics.median(pickup["acked"])
    return [
        (
            "6",
            cpu_text,
            f"{100 * idle:.2f} % over {pickup['idle_seconds']:g} s",
            f"{idle / 0.01:.2f}x",
            idle <= 0.01,
            source,
        ),
        (
            "6",
            latency_text,
            f"{median:.2f} ms over {len(pickup['acked'])} jobs",
            f"{median / 5:.2f}x",
            median <= 5.0,
            source,
        ),
    ]


def render(folder: Path = docs_section.RESULTS) -> str:
    def load(name: str) -> Any:
        return docs_section.load_results(name, folder)

    rows = [
        *peers_rows(load("peers")),
        *core_rows(load("core")),
        *rss_rows(load("rss")),
        *pickup_rows(load("pickup")),
    ]
    lines = [
        "## Targets of the worker runtime",
        "",
        "Each target of the issue with its latest measured value. The ratio is durq's value "
        "over the target's reference (the peer, the floor, the ideal rate or the limit): "
        'for an "at least" target above the bound is met, for an "at most" target (memory, '
        "CPU, latency) below 1 is met. Written by `bench/targets.py` from the scripts' latest "
        "raw numbers; the reasons for misses are in the notes below the table.",
        "",
        "| # | target | measured | ratio | met | measured by |",
        "|---|---|---|---:|---|---|",
    ]
    for number, text, measured, ratio, met, source in rows:
        verdict = "not measured" if met is None and measured == "—" else ""
        if met is not None:
            verdict = "yes" if met else "**no**"
        lines.append(f"| {number} | {text} | {measured} | {ratio} | {verdict} | {source} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    text = render()
    print(text)
    if not args.no_write:
        docs_section.write_section("targets", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
