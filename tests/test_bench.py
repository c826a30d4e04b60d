"""Smoke test of the core benchmark: it runs end to end and prints its table (no timings are
checked: speed is for docs/benchmarks.md, not for a test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench.py"


@pytest.mark.slow
def test_quick_bench_runs_and_prints_the_table(python_env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--no-write", "--dir", str(tmp_path)],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "| workload | sync | durq jobs/s | floor jobs/s | ratio | target | met? |" in done.stdout
    for workload in ("enqueue, one commit each", "enqueue_many", "drain, 4 processes"):
        assert workload in done.stdout
    assert list(tmp_path.iterdir()) == []  # the temporary files were removed


def _run(script: str, args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_worker_benchmarks_run_and_print_their_tables(python_env: dict[str, str]) -> None:
    # Memory of a real `durq worker` that ran jobs on every slot.
    out = _run("rss.py", ["--levels", "2", "--jobs-per-slot", "2", "--no-write"], python_env)
    assert "| 2 | 4 | 2 |" in out  # 4 jobs, run on 2 task threads
    # Idle CPU and pickup of a real idle worker.
    # --quiet-wait 0: a test must not wait for the machine to be idle (others run beside it).
    quick = ["--idle-seconds", "0.5", "--quiet-wait", "0", "--no-write"]
    out = _run("pickup.py", ["--jobs", "3", *quick], python_env)
    assert "**Idle CPU:**" in out and "| `enqueue` returned |" in out
    # The 4-process drain at two concurrencies, through the peers harness.
    args = ["--levels", "1,4", "--jobs", "200", "--quiet-wait", "0", "--no-write"]
    out = _run("concurrency.py", args, python_env)
    assert "| 1 |" in out and "| 4 |" in out and "| 0 / 0 |" in out
    # The targets table, whatever has been measured on this machine.
    assert "## Targets of the worker runtime" in _run("targets.py", ["--no-write"], python_env)
