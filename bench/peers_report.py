"""The peers benchmark's results as markdown, and its place in docs/benchmarks.md.

The script owns only the block between ``<!-- peers:results:start -->`` and
``<!-- peers:results:end -->``, inside the peers section; the prose around it (how to read
the table, profiles, findings) is written by hand and kept across runs.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
from pathlib import Path
from typing import Any

SECTION_START = "<!-- peers:start -->"
SECTION_END = "<!-- peers:end -->"
RESULTS_START = "<!-- peers:results:start -->"
RESULTS_END = "<!-- peers:results:end -->"

SKELETON = f"""{SECTION_START}
## durq against the queues people would pick instead

`make bench-peers` (`bench/peers.py`) installs the peers in their own venv under
`var/peers-venv` and runs every queue through the same workloads, each library driven the
way its users drive it (the adapter modules `bench/peers_*.py` say what "run a job" means
for each). The table below is its latest output.

{RESULTS_START}
{RESULTS_END}
{SECTION_END}
"""

# (key in the results, label, unit, higher is better)
THROUGHPUT_ROWS = [
    ("enqueue", "enqueue, one commit per job", "jobs/s"),
    ("enqueue_batch", "enqueue in batches of 1,000", "jobs/s"),
    ("drain1", "drain, 1 process", "jobs/s"),
    ("drain4", "drain, 4 processes", "jobs/s"),
]


def machine() -> dict[str, Any]:
    """What the numbers were taken on."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pg_version = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "show server_version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pg_version = "not reachable"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
        "kernel": platform.release(),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _ratio(durq: float | None, peer: float | None) -> str:
    if not durq or not peer:
        return ""
    return f" · durq **{durq / peer:.2f}x**"


def _summary(results: dict[str, Any], key: str, label: str) -> float | None:
    values = results[key].get(label) or []
    if key.startswith("drain"):
        values = [v["rate"] for v in values]
    return statistics.median(values) if values else None


def latency(results: dict[str, Any], label: str, q: float) -> float | None:
    values = results["latency"].get(label) or []
    return percentile(values, q) * 1000 if values else None


def durq_ratio(results: dict[str, Any], key: str, durq: str, peer: str) -> float | None:
    ours, theirs = _summary(results, key, durq), _summary(results, key, peer)
    return ours / theirs if ours and theirs else None


def _table(results: dict[str, Any], durq: str, peers: list[str]) -> list[str]:
    columns = [durq, *peers]
    lines = [
        "| workload | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for key, label, unit in THROUGHPUT_ROWS:
        ours = _summary(results, key, durq)
        cells = [_rate(ours) if ours else "n/a"]
        for peer in peers:
            theirs = _summary(results, key, peer)
            cells.append(_rate(theirs) + _ratio(ours, theirs) if theirs else "n/a")
        lines.append(f"| {label} ({unit}) | " + " | ".join(cells) + " |")
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        ours = latency(results, durq, q)
        cells = [f"{ours:.1f}" if ours else "n/a"]
        for peer in peers:
            theirs = latency(results, peer, q)
            # Lower is better: the ratio is the peer's latency over durq's.
            cells.append(f"{theirs:.1f}" + _ratio(theirs, ours) if theirs else "n/a")
        lines.append(f"| idle pickup latency {name} (ms) | " + " | ".join(cells) + " |")
    for key, label in (("drain1", "1 process"), ("drain4", "4 processes")):
        cells = []
        for column in columns:
            runs = results[key].get(column) or []
            if not runs:
                cells.append("n/a")
                continue
            twice = sum(r["duplicates"] for r in runs)
            never = sum(r["missing"] for r in runs)
            cells.append(f"{twice} / {never}" if (twice or never) else "0 / 0")
        lines.append(
            f"| drain, {label}: jobs run twice / never (all runs) | " + " | ".join(cells) + " |"
        )
    return lines


TARGETS = [
    # (backend, workload, peer, at least)
    ("sqlite", "drain4", "huey", 1.0),
    ("sqlite", "drain4", "persist-queue", 3.0),
    ("postgresql", "drain4", "procrastinate", 1.5),
    ("postgresql", "drain4", "pgqueuer", 1.5),
]
DURQ = {"sqlite": "durq (SQLite)", "postgresql": "durq (PostgreSQL)"}


def targets(results: dict[str, Any]) -> list[tuple[str, float | None, bool | None]]:
    """(description, durq's ratio, met) per target of issue 7; ratio None = not measured."""
    out: list[tuple[str, float | None, bool | None]] = []
    for backend, key, peer, least in TARGETS:
        ratio = durq_ratio(results, key, DURQ[backend], peer)
        text = f"{DURQ[backend]} 4-process drain ≥ {least:.1f}x {peer}'s"
        out.append((text, ratio, None if ratio is None else ratio >= least))
    for backend in ("sqlite", "postgresql"):
        runs = [r for key in ("drain1", "drain4") for r in results[key].get(DURQ[backend]) or []]
        if runs:
            bad = sum(r["duplicates"] + r["missing"] for r in runs)
            out.append((f"{DURQ[backend]}: no job run twice or never", None, bad == 0))
    return out


def render(results: dict[str, Any]) -> str:
    meta, systems = results["meta"], results["systems"]
    m = meta["machine"]
    load = meta["load"]
    lines = [
        f"_Generated by `make bench-peers` ({' '.join(meta['argv']) or 'defaults'}) at "
        f"{meta['started']} UTC; the run took {meta['minutes']:.0f} min._",
        "",
        f"**Machine:** {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, Python "
        f"{m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgresql']}. Load average "
        f"(1 min) {load['start']:.2f} just before the run, {load['end']:.2f} just after, "
        f"mean {load['mean']:.2f} during it (which includes the benchmark's own processes)."
        + (f" {meta['load_note']}" if meta.get("load_note") else ""),
        "",
        f"**Method:** medians of {meta['reps']} repetitions; within each repetition every "
        "library runs every workload in turn (the order rotated each repetition), so drift "
        f"hits all alike. Drains of {meta['jobs']:,} jobs"
        + (
            f" (fewer than the default {meta['default_jobs']:,}, to keep the run short)"
            if meta["jobs"] < meta.get("default_jobs", 0)
            else ""
        )
        + f"; enqueue of {meta['enqueue_jobs']:,} "
        f"jobs one commit each and {meta['jobs']:,} in batches of 1,000; pickup latency over "
        f"{meta['reps']} x {meta['latency_samples']} samples pooled. SQLite "
        f"`synchronous={meta['synchronous'].upper()}` wherever the library lets it be set; "
        'PostgreSQL with its defaults (`synchronous_commit=on`, `fsync=on`). "durq Nx" is '
        "durq's throughput over the peer's (for latency: the peer's over durq's): above 1, "
        "durq is ahead.",
        "",
        "| queue | version | storage | settings, worker loop |",
        "|---|---|---|---|",
    ]
    for label, system in systems.items():
        version = system.get("version") or "—"
        settings = system.get("settings") or f"not run: {system.get('error', '?')}"
        lines.append(f"| {label} | {version} | {system['backend']} | {settings} |")
    for backend, title in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        peers = [
            label
            for label, s in systems.items()
            if s["backend"] == backend and s["adapter"] != "durq" and "version" in s
        ]
        if not peers:
            continue
        lines += ["", f"### {title}", "", *_table(results, DURQ[backend], peers)]
    lines += ["", "### Targets (issue 7)", "", "| target | durq's ratio | met |", "|---|---:|---|"]
    for text, ratio, met in targets(results):
        shown = "—" if ratio is None else f"{ratio:.2f}x"
        verdict = "not measured" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {text} | {shown} | {verdict} |")
    if results["errors"]:
        lines += ["", "Failures during the run:", ""]
        lines += [f"- {error}" for error in results["errors"]]
    return "\n".join(lines)


def write_docs(path: Path, block: str) -> None:
    """Put ``block`` between the results markers of the peers section of ``path``."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION_START not in text:
        text = text.rstrip("\n") + "\n\n" + SKELETON
    start, end = text.index(SECTION_START), text.index(SECTION_END)
    section = text[start:end]
    if RESULTS_START not in section:
        section = section.rstrip("\n") + f"\n\n{RESULTS_START}\n{RESULTS_END}\n"
    head, _, rest = section.partition(RESULTS_START)
    _, _, tail = rest.partition(RESULTS_END)
    section = f"{head}{RESULTS_START}\n{block}\n{RESULTS_END}{tail}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text[:start] + section + text[end:])
