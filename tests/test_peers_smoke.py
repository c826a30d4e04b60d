"""The peers benchmark's harness (bench/peers_*.py): its checks and its docs writing, and one
small real run of durq through it. The peers themselves live in their own venv, installed
by ``make bench-peers``, so they are not exercised here. No speed is asserted."""

from __future__ import annotations

import importlib
import sys
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
        assert harness.enqueue_rate(ws, durq, 50, batch=True) > 0
        latencies = harness.pickup_latencies(ws, durq, samples=3)
        assert len(latencies) == 3 and all(0 < s < 30 for s in latencies)
    finally:
        ws.close()
    # Every measurement cleaned up after itself; only the logs remain.
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["logs"]
