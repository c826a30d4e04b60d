"""Running real ``durq worker`` processes in tests, and waiting on what they do."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Workers:
    """Starts ``durq worker`` processes and kills whatever is left of them after the test.

    A worker's output goes to a file, not a pipe: a pipe nobody reads fills up after 64 KB
    of log lines and then blocks the worker's next write.
    """

    def __init__(self, url: str, env: dict[str, str]) -> None:
        self.url = url
        self.env = env
        self.started: list[subprocess.Popen[str]] = []
        self._logs = Path(tempfile.mkdtemp(prefix="durq-worker-logs-"))

    def start(self, *args: str) -> subprocess.Popen[str]:
        log = self._logs / f"worker-{len(self.started)}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "durq", "--db", self.url, "worker", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        _LOGS[proc.pid] = log
        self.started.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        shutil.rmtree(self._logs, ignore_errors=True)


_LOGS: dict[int, Path] = {}  # a worker process's pid -> its log file


def log_of(proc: subprocess.Popen[str]) -> str:
    """What a worker has written so far (stdout and stderr)."""
    log = _LOGS.get(proc.pid)
    return log.read_text() if log is not None and log.exists() else ""


def finish(proc: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, str]:
    """Wait for a worker to exit; its exit code and what it wrote (stdout and stderr)."""
    code = proc.wait(timeout=timeout)
    log = _LOGS.get(proc.pid)
    return code, log.read_text() if log is not None else ""
