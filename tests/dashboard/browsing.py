"""What the browser tests share: Debian's Chromium, the dashboard served by a real uvicorn,
and a queue with an hour of real work behind it for the chart."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import durq
from durq.backends import sqlite as sqlite_backend
from durq.dashboard.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 10_000
DOCS = Path(__file__).resolve().parents[2] / "docs"


def screenshot_path(name: str, tmp_path: Path) -> Path:
    """Where a test saves its screenshot ``name``: docs/, for the pictures the docs show,
    only when ``DURQ_SCREENSHOTS=docs`` (``make screenshots``); else the test's own
    temporary folder, so that ``make test`` leaves the checkout as it found it."""
    return (DOCS if os.environ.get("DURQ_SCREENSHOTS") == "docs" else tmp_path) / name


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run must install Debian's chromium")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); required in CI")


class Server:
    """The dashboard under uvicorn in a thread, on a free loopback port, with its own queue."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.queue = durq.connect(url)
        app = create_app(self.queue, token, allowed_hosts={"127.0.0.1", "localhost"})
        config = uvicorn.Config(app, log_level="warning", ws="none", lifespan="off")
        self.server = uvicorn.Server(config)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
        self.queue.close()


class ShiftedClock(types.SimpleNamespace):
    """``time`` as the SQLite backend sees it, ``offset`` seconds in the past: the work
    below then lands across the last hour of the throughput chart."""

    def __init__(self) -> None:
        super().__init__(offset=0.0)

    def time(self) -> float:
        return time.time() - float(self.offset)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def fill_an_hour(queue: durq.JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real claims, completions and failures, each at a time in the last hour."""
    clock = ShiftedClock()
    monkeypatch.setattr(sqlite_backend, "time", clock)
    rng = random.Random(5)
    for minute in range(58, 0, -1):
        clock.offset = minute * 60
        n = rng.randint(4, 14)
        queue.enqueue_many([{"account": f"acct-{i % 7}", "amount": i} for i in range(n)])
        for i in range(n):
            job = queue.claim(f"worker-{i % 3}")
            assert job is not None
            if rng.random() < 0.12:
                queue.fail(job, "Traceback (most recent call last):\nTimeoutError: ledger busy")
            else:
                queue.complete(job, {"applied": True})
    monkeypatch.undo()


def show_a_tidy_database_path(page: Any) -> None:
    """For the screenshots in docs/: the footer names the test's temporary file, which is
    right but reads as noise in the docs; show the path a reader's own install would have."""
    page.evaluate("document.getElementById('database').textContent = '/srv/shop/var/durq.db'")
