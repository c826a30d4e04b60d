"""The marked sections of docs/benchmarks.md: each benchmark script owns one and rewrites it."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


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
