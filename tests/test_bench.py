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
