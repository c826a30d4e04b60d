"""Plumbing shared by the SQL backends: named queries and numbered migrations, read from
``.sql`` files kept beside each backend. How they run is each backend's business."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_\w+\.sql$")


def load_queries(filename: str) -> dict[str, str]:
    """The ``-- name: x`` sections of ``backends/<filename>``, by name."""
    text = resources.files("durq.backends").joinpath(filename).read_text()
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def load_migrations(engine: str) -> list[tuple[int, str]]:
    """``(version, sql)`` for each ``backends/migrations/<engine>/NNNN_*.sql``, in order.

    Versions must run 1, 2, 3 … with no gap, so a missing file cannot go unnoticed.
    """
    folder = resources.files("durq.backends").joinpath("migrations", engine)
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text()))
    found.sort()
    if [version for version, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"durq {engine} migrations are not numbered 1..n: {found}")
    return found
