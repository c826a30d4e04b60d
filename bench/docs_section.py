"""The marked sections of docs/benchmarks.md: each benchmark script owns one and rewrites it.

Each script also keeps its latest raw numbers in ``var/bench-results/<name>.json``, from
which ``bench/targets.py`` builds the table of targets.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "var" / "bench-results"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(name: str, text: str, intro: str = "# Benchmarks\n") -> None:
    """Put ``text`` between the ``name`` markers, keeping every other section as it is;
    append the section if it is not there yet (a new file starts with ``intro``)."""
    start, end = markers(name)
    DOCS.parent.mkdir(exist_ok=True)
    current = DOCS.read_text() if DOCS.exists() else intro
    block = f"{start}\n{text}\n{end}"
    if start in current and end in current:
        head, _, rest = current.partition(start)
        _, _, tail = rest.partition(end)
        current = head + block + tail
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(current)


def save_results(name: str, data: Any) -> Path:
    """Keep a script's latest raw numbers (JSON) for ``bench/targets.py``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def load_results(name: str, folder: Path = RESULTS) -> Any:
    """A script's latest raw numbers, or None when it has not been run here."""
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def source_state() -> str:
    """Which durq was measured: the commit, and a digest of uncommitted changes under src/
    ("abc1234", or "abc1234+d5e6f7a8" with changes), so numbers from different runs can be
    matched to the code they measured while src/ moves."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "diff", "HEAD", "--", "src"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+{hashlib.sha1(diff).hexdigest()[:8]}" if diff else head
