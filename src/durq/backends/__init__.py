"""Backends, chosen by URL scheme. Adding one = a module here + a line in ``BACKENDS``."""

from __future__ import annotations

import importlib
import os
from typing import Any

from durq.errors import BackendError
from durq.queue import JobQueue, QueueSettings

DEFAULT_URL = "sqlite:///durq.db"

# scheme -> "module:class", imported only when chosen (psycopg is an optional extra).
BACKENDS = {
    "sqlite": "durq.backends.sqlite:SQLiteQueue",
    "postgresql": "durq.backends.postgres:PostgresQueue",
    "postgres": "durq.backends.postgres:PostgresQueue",
}


def connect(url: str | None = None, **settings: Any) -> JobQueue:
    """Open the queue at ``url`` (default ``$DURQ_URL``, else ``sqlite:///durq.db``).

    The schema is created or migrated on the way. ``settings`` are ``QueueSettings`` fields.
    Raises ``BackendError`` when the database cannot be opened or is not a durq database.
    """
    url = url or os.environ.get("DURQ_URL") or DEFAULT_URL
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    target = BACKENDS.get(scheme)
    if target is None:
        known = ", ".join(sorted(BACKENDS))
        raise BackendError(f"unknown database URL {url!r}: the scheme must be one of {known}")
    module_name, _, class_name = target.partition(":")
    backend = getattr(importlib.import_module(module_name), class_name)
    if "listen_url" not in settings and os.environ.get("DURQ_LISTEN_URL"):
        settings["listen_url"] = os.environ["DURQ_LISTEN_URL"]
    try:
        options = QueueSettings(**settings)
    except TypeError as exc:
        raise BackendError(f"bad queue setting: {exc}") from None
    queue: JobQueue = backend(url, options)
    return queue
