"""The peers benchmark's results as markdown, and its place in docs/benchmarks.md.

The script owns only the block between ``<!-- peers:results:start -->`` and
``<!-- peers:results:end -->``, inside the peers section; the prose around it (how to read
the table, profiles, findings) is written by hand and kept across runs.
"""

from __future__ import annotations

import html
import math
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


def _quiet(meta: dict[str, Any]) -> str:
    quiet = meta.get("quiet")
    if not quiet or not quiet.get("max_wait"):
        return ""
    return (
        f" Before each of its {quiet['measurements']} measurements the run waited (up to "
        f"{quiet['max_wait']:g} s) for other processes to leave the CPUs mostly idle: "
        f"{quiet['waited'] / 60:.1f} min of waiting in all; {quiet['busy_starts']} "
        "measurement(s) started while others were still busy."
    )


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


DURQ = {"sqlite": "durq (SQLite)", "postgresql": "durq (PostgreSQL)"}
# Issue "worker runtime", targets 1-3: (backend, workload, peer, durq at least N x the peer).
PEER_TARGETS = [("sqlite", "drain4", "huey", 3.0), ("postgresql", "drain4", "pgqueuer", 1.5)]
SQLITE_DRAIN4_FLOOR = 10_000  # jobs/s, target 1
IO_SHARE = 0.8  # target 3: of the ideal rate (concurrency / sleep)
IO_TARGETS = ["durq (SQLite)", "durq (SQLite, async tasks)"]

Target = tuple[str, str, str, bool | None]  # (target, measured, ratio, met: None = not run)


def io_rate(results: dict[str, Any], label: str) -> float | None:
    values = [v["rate"] for v in results.get("io", {}).get(label) or []]
    return statistics.median(values) if values else None


def io_ideal(results: dict[str, Any]) -> float:
    io = results["meta"]["io"]
    return float(io["concurrency"] / io["sleep"])


def targets(results: dict[str, Any]) -> list[Target]:
    """Targets 1-3 of the worker-runtime issue, from one peers run."""
    out: list[Target] = []

    def ran(label: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        return [r for key in keys for r in results.get(key, {}).get(label) or []]

    sqlite = DURQ["sqlite"]
    rate = _summary(results, "drain4", sqlite)
    for backend, key, peer, least in PEER_TARGETS:
        ours, theirs = _summary(results, key, DURQ[backend]), _summary(results, key, peer)
        ratio = ours / theirs if ours and theirs else None
        measured = f"{_rate(ours)} vs {_rate(theirs)} jobs/s" if ours and theirs else "—"
        out.append(
            (
                f"{DURQ[backend]}, 4 processes: ≥ {least:g}x {peer}'s 4-process drain",
                measured,
                f"{ratio:.2f}x" if ratio else "—",
                None if ratio is None else ratio >= least,
            )
        )
        if backend == "sqlite":
            out.append(
                (
                    f"{sqlite}, 4 processes: ≥ {SQLITE_DRAIN4_FLOOR:,} jobs/s",
                    f"{_rate(rate)} jobs/s" if rate else "—",
                    f"{rate / SQLITE_DRAIN4_FLOOR:.2f}x" if rate else "—",
                    None if rate is None else rate >= SQLITE_DRAIN4_FLOOR,
                )
            )
            runs = ran(sqlite, ("drain1", "drain4"))
            bad = sum(r["duplicates"] + r["missing"] for r in runs)
            twice = sum(r["duplicates"] for r in runs)
            out.append(
                (
                    f"{sqlite}: no job run twice or lost (every drain)",
                    f"{twice} twice, {bad - twice} lost in {len(runs)} drains" if runs else "—",
                    "",
                    None if not runs else bad == 0,
                )
            )
    io = results.get("meta", {}).get("io")
    if io:
        ideal = io_ideal(results)
        for label in IO_TARGETS:
            value = io_rate(results, label)
            tasks = "async tasks" if "async" in label else "thread tasks"
            out.append(
                (
                    f"I/O-bound, durq (SQLite) with {tasks}, 1 process, concurrency "
                    f"{io['concurrency']}: ≥ {IO_SHARE:g}x the ideal {ideal:,.0f} jobs/s",
                    f"{_rate(value)} jobs/s" if value else "—",
                    f"{value / ideal:.2f}x" if value else "—",
                    None if value is None else value >= IO_SHARE * ideal,
                )
            )
    return out


def _io_table(results: dict[str, Any]) -> list[str]:
    io = results["meta"]["io"]
    ideal = io_ideal(results)
    lines = [
        f"### I/O-bound: {io['jobs']:,} jobs that each sleep {io['sleep'] * 1000:g} ms, one "
        f"process running {io['concurrency']} at once (ideal {ideal:,.0f} jobs/s)",
        "",
        "| queue | storage | tasks | jobs/s | of the ideal | run twice / never |",
        "|---|---|---|---:|---:|---:|",
    ]
    for label, runs in results["io"].items():
        if not runs:
            continue
        system = results["systems"][label]
        rate = statistics.median(r["rate"] for r in runs)
        twice = sum(r["duplicates"] for r in runs)
        never = sum(r["missing"] for r in runs)
        tasks = IO_TASKS.get(system["adapter"], "?")
        if "async" in label:
            tasks = IO_TASKS["durq-async"]
        storage = "SQLite" if system["backend"] == "sqlite" else "PostgreSQL"
        lines.append(
            f"| {label} | {storage} | {tasks} | {_rate(rate)} | {rate / ideal:.2f}x "
            f"| {twice} / {never} |"
        )
    return lines


IO_TASKS = {
    "durq": "plain function on the worker's threads (`time.sleep`)",
    "durq-async": "`async def` on the worker's event loop (`asyncio.sleep`)",
    "huey": "plain function, `Consumer(workers=100, worker_type='thread')` (`time.sleep`)",
    "procrastinate": "`async def`, `run_worker_async(concurrency=100)` (`asyncio.sleep`)",
}


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
        + (f" {meta['load_note']}" if meta.get("load_note") else "")
        + _quiet(meta),
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
    if any(results.get("io", {}).values()):
        lines += ["", *_io_table(results)]
    lines += [
        "",
        "The drains as a chart: [drain.svg](drain.svg). The targets these numbers meet or miss "
        "are in the table of targets above.",
    ]
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


# -- the chart -------------------------------------------------------------------------------

CHART_COLORS = {  # (1 process, 4 processes)
    "durq": ("#9ecae1", "#2166ac"),
    "peer": ("#d9d9d9", "#737373"),
}


def _nice_step(top: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` gridlines."""
    raw = max(top, 1.0) / ticks
    power = float(10 ** math.floor(math.log10(raw)))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def drain_chart(results: dict[str, Any]) -> str:
    """The drains (jobs/s, 1 and 4 processes, per queue and storage) as an SVG bar chart,
    written by hand: one shared scale, durq in blue, the peers in grey."""
    meta, systems = results["meta"], results["systems"]
    panels = []
    for backend, title in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        labels = [DURQ[backend]] + [
            label
            for label, s in systems.items()
            if s["backend"] == backend and s["adapter"] != "durq" and "version" in s
        ]
        rows = [
            (label, [_summary(results, k, label) for k in ("drain1", "drain4")]) for label in labels
        ]
        rows = [(label, pair) for label, pair in rows if any(pair)]
        if rows:
            panels.append((title, rows))
    values = [v for _, rows in panels for _, pair in rows for v in pair if v]
    step = _nice_step(max(values, default=1.0))
    top = step * math.ceil(max(values, default=1.0) / step)
    left, width, bar, gap = 190, 460, 13, 10
    right = left + width
    y = 74
    body: list[str] = []
    for title, rows in panels:
        body.append(f'<text x="10" y="{y + 4}" font-weight="bold">{esc(title)}</text>')
        y += 14
        panel_top = y
        bars: list[str] = []
        for label, pair in rows:
            kind = "durq" if label.startswith("durq") else "peer"
            bars.append(
                f'<text x="{left - 8}" y="{y + bar + 4}" text-anchor="end">{esc(label)}</text>'
            )
            for value, color in zip(pair, CHART_COLORS[kind], strict=True):
                if value:
                    w = max(1.0, width * value / top)
                    bars.append(
                        f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{color}"/>'
                    )
                    bars.append(
                        f'<text x="{left + w + 4:.1f}" y="{y + bar - 2}" font-size="11">'
                        f"{value:,.0f}</text>"
                    )
                y += bar
            y += gap
        tick = 0.0
        while tick <= top + step / 2:  # gridlines first, under the bars
            x = left + width * tick / top
            body.append(
                f'<line x1="{x:.1f}" y1="{panel_top - 4}" x2="{x:.1f}" y2="{y - gap + 4}" '
                'stroke="#e5e5e5"/>'
            )
            body.append(
                f'<text x="{x:.1f}" y="{y + 8}" font-size="10" fill="#555" '
                f'text-anchor="middle">{tick:,.0f}</text>'
            )
            tick += step
        body += bars
        y += 30
    height = y
    legend_y = 52
    legend = []
    x = 10
    for text, color in (
        ("durq, 1 process", CHART_COLORS["durq"][0]),
        ("durq, 4 processes", CHART_COLORS["durq"][1]),
        ("peer, 1 process", CHART_COLORS["peer"][0]),
        ("peer, 4 processes", CHART_COLORS["peer"][1]),
    ):
        legend.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{color}"/>')
        legend.append(f'<text x="{x + 16}" y="{legend_y}">{text}</text>')
        x += 150
    subtitle = (
        f"{meta['jobs']:,} no-op jobs, median of {meta['reps']} runs; SQLite "
        f"synchronous={meta['synchronous'].upper()}, PostgreSQL defaults; {meta['started']} UTC"
    )
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{right + 70}" height="{height}" '
            f'viewBox="0 0 {right + 70} {height}" font-family="Helvetica, Arial, sans-serif" '
            'font-size="12" fill="#222">',
            f'<rect width="{right + 70}" height="{height}" fill="#fff"/>',
            '<text x="10" y="20" font-size="15" font-weight="bold">'
            "Draining a queue: jobs per second (higher is better)</text>",
            f'<text x="10" y="36" font-size="11" fill="#555">{esc(subtitle)}</text>',
            *legend,
            *body,
            "</svg>",
            "",
        ]
    )


def esc(text: str) -> str:
    return html.escape(text, quote=True)
