"""The peers benchmark's harness (bench/peers_*.py): its checks, its docs writing, its chart,
its profile summaries and the targets table, and one small real run of durq through it
(the drains, the I/O-bound drain with thread and async tasks, pickup). The peers themselves
live in their own venv, installed by ``make bench-peers``, so they are not exercised here.
No speed is asserted."""

from __future__ import annotations

import importlib
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _bench(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


harness = _bench("peers_harness")
report = _bench("peers_report")
profile = _bench("peers_profile")
targets = _bench("targets")


def test_check_runs_counts_jobs_run_twice_and_never(tmp_path: Path) -> None:
    (tmp_path / "ids-0.txt").write_text("0\n1\n2\n")
    (tmp_path / "ids-1.txt").write_text("2\n4\n4\n4\n")
    files = sorted(tmp_path.glob("ids-*.txt"))
    # 2 and 4 ran more than once; 3 and 5 never ran.
    assert harness.check_runs(files, 6) == (2, 2)
    assert harness.check_runs(files[:1], 3) == (0, 0)


def test_check_runs_refuses_jobs_nobody_enqueued(tmp_path: Path) -> None:
    (tmp_path / "ids-0.txt").write_text("0\n7\n")
    with pytest.raises(harness.BenchError, match=r"never enqueued ran: \[7\]"):
        harness.check_runs([tmp_path / "ids-0.txt"], 2)


def test_write_docs_keeps_other_sections_and_prose(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    report.write_docs(docs, "table one")
    text = docs.read_text()
    assert text.startswith("# Benchmarks\n")
    assert "table one" in text
    assert text.count(report.SECTION_START) == 1

    # Someone else's section, and prose written by hand inside ours, around the table.
    text = text.replace(report.RESULTS_END, report.RESULTS_END + "\nOur findings.")
    text += "\n<!-- core:start -->\nCore numbers.\n<!-- core:end -->\n"
    docs.write_text(text)
    report.write_docs(docs, "table two")
    text = docs.read_text()
    assert "table one" not in text
    assert "table two" in text
    assert "Our findings." in text
    assert "Core numbers." in text
    assert text.count(report.RESULTS_START) == 1


@pytest.mark.slow
def test_durq_runs_through_the_harness(
    tmp_path: Path, python_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runners are real processes of this venv's python, importing this checkout's durq.
    monkeypatch.setenv("PYTHONPATH", python_env["PYTHONPATH"])
    ws = harness.Workspace(tmp_path / "run", "full")
    durq = harness.System("durq", "sqlite", Path(sys.executable))
    try:
        found = harness.info(ws, durq)
        assert "error" not in found and found["version"]
        result = harness.drain(ws, durq, jobs=300, processes=2)
        assert (result.duplicates, result.missing) == (0, 0)
        assert result.rate > 0
        # The I/O-bound drain: one worker process, jobs that sleep, thread and async tasks.
        io = harness.IoWork(concurrency=20, sleep=0.01)
        for env in ((), (("BENCH_DURQ_TASKS", "async"),)):
            system = harness.System("durq", "sqlite", Path(sys.executable), "io", env)
            result = harness.drain(ws, system, jobs=60, processes=1, io=io)
            assert (result.duplicates, result.missing) == (0, 0)
        with pytest.raises(ValueError, match="one process"):
            harness.drain(ws, durq, jobs=10, processes=2, io=io)
        assert harness.enqueue_rate(ws, durq, 50, batch=True) > 0
        latencies = harness.pickup_latencies(ws, durq, samples=3)
        assert len(latencies) == 3 and all(0 < s < 30 for s in latencies)
    finally:
        ws.close()
    # Every measurement cleaned up after itself; only the logs remain.
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["logs"]


def _results() -> dict[str, object]:
    """A peers run's results as ``bench/peers.py`` keeps them: two queues per storage."""

    def drains(*rates: float) -> list[dict[str, float]]:
        return [{"rate": r, "duplicates": 0, "missing": 0} for r in rates]

    systems = {
        "durq (SQLite)": {"adapter": "durq", "backend": "sqlite", "version": "0"},
        "durq (SQLite, async tasks)": {"adapter": "durq", "backend": "sqlite", "version": "0"},
        "huey": {"adapter": "huey", "backend": "sqlite", "version": "3"},
        "durq (PostgreSQL)": {"adapter": "durq", "backend": "postgresql", "version": "0"},
        "pgqueuer": {"adapter": "pgqueuer", "backend": "postgresql", "version": "1"},
        "pgqueuer (batch_size=1)": {"adapter": "pgqueuer", "backend": "postgresql", "version": "1"},
    }
    return {
        "systems": systems,
        "enqueue": {},
        "enqueue_batch": {},
        "drain1": {"durq (SQLite)": drains(9000), "huey": drains(4000)},
        "drain4": {
            "durq (SQLite)": drains(12000, 13000),
            "huey": drains(4000, 4000),
            "durq (PostgreSQL)": drains(8000),
            "pgqueuer": drains(6000),
        },
        "latency": {},
        "io": {"durq (SQLite)": drains(850), "durq (SQLite, async tasks)": drains(700)},
        "errors": [],
        "meta": {
            "started": "2026-01-02 03:04",
            "reps": 2,
            "jobs": 20000,
            "synchronous": "full",
            "io": {"jobs": 2000, "concurrency": 100, "sleep": 0.1},
            "durq_source": "abc1234",
        },
    }


def test_targets_from_a_peers_run() -> None:
    found = {
        text: (measured, ratio, met) for text, measured, ratio, met in report.targets(_results())
    }
    assert len(found) == 6
    huey = next(v for k, v in found.items() if "huey" in k)
    assert huey == ("12,500 vs 4,000 jobs/s", "3.12x", True)
    floor = next(v for k, v in found.items() if "10,000 jobs/s" in k)
    assert floor[2] is True
    pgqueuer = next(v for k, v in found.items() if "pgqueuer" in k)
    assert pgqueuer[1:] == ("1.33x", False)
    io = [v for k, v in found.items() if "I/O-bound" in k]
    assert [v[1:] for v in io] == [("0.85x", True), ("0.70x", False)]


def test_targets_table_marks_what_was_not_measured(tmp_path: Path) -> None:
    (tmp_path / "peers.json").write_text(json.dumps(_results()))
    text = targets.render(tmp_path)
    assert text.count("\n| ") >= 11
    assert "| 1 | durq (SQLite), 4 processes: ≥ 3x huey's 4-process drain | 12,500" in text
    assert "durq `abc1234`" in text
    # No core, rss or pickup numbers were kept: those rows say so.
    assert text.count("not measured") == 5


def test_drain_chart_is_svg_with_every_queue() -> None:
    svg = report.drain_chart(_results())
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for label in ("durq (SQLite)", "huey", "durq (PostgreSQL)", "pgqueuer", "12,500"):
        assert label in texts
    # A queue without drains (the variant here) gets no bar; a variant of durq never does.
    assert "pgqueuer (batch_size=1)" not in texts
    assert "durq (SQLite, async tasks)" not in texts
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("height") == "13"]
    assert len(bars) == 6  # durq and huey twice each, durq and pgqueuer on PostgreSQL once


def test_profile_summary_counts_waiting_threads_apart() -> None:
    raw = "\n".join(
        [
            "<module> (/b/peers_runner.py:1);main (/b/peers_runner.py:2);"
            "DurqAdapter.drain (/b/peers_durq.py:3);Worker.run (/s/runtime.py:4);"
            "SQLiteConnection.write (/s/sqlite_connection.py:194) 30",
            "<module> (/b/peers_runner.py:1);main (/b/peers_runner.py:2);"
            "DurqAdapter.drain (/b/peers_durq.py:3);Worker._take (/s/runtime.py:270) 50",
            "Thread._bootstrap (/t/threading.py:1);ThreadSlots._serve (/s/slots.py:57) 70",
            "Thread._bootstrap (/t/threading.py:1);ThreadSlots._serve (/s/slots.py:60);"
            "RunningJob.run (/s/attempt.py:74) 10",
            # Before "go": not timed.
            "<module> (/b/peers_runner.py:1);main (/b/peers_runner.py:2);"
            "wait_for_go (/b/peers_runner.py:9) 99",
        ]
    )
    text = profile.summarize(raw)
    assert text.startswith("  40 busy samples in the drain (120 more in threads waiting")
    assert "75.0% SQLiteConnection.write (sqlite_connection.py:194)" in text
    assert "25.0% RunningJob.run (attempt.py:74)" in text
