"""Supervisor runs the whole system: deploy/supervisord.conf, end to end, with real signals.

The test runs supervisord on a copy of the real config in a temporary directory laid out like
the repository (``deploy/``, ``.venv/bin/durq``, ``var/``), so every ``%(here)s`` path is
exercised and the repository's own ``var/`` is never touched. The copy only shortens the
timings (``SPEEDUPS``); each change must match the real config exactly as often as expected,
so a change to the config fails here loudly instead of testing something else.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "deploy" / "supervisord.conf"

CONSUMERS = [f"consumer:consumer-{n:02d}" for n in range(4)]
PROGRAMS = ["producer", *CONSUMERS, "dashboard"]
STOPWAITSECS = 10
# A job id (UUIDv7) in a log line: what makes it a job line.
JOB_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\b")

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# (text in the real config, replacement, how many times it must occur there).
SPEEDUPS = [
    ("produce --interval 0.2", "produce --interval 0.05", 1),
    ("--grace 30", "--grace 5 --lease 2", 1),
    ("stopwaitsecs=40", f"stopwaitsecs={STOPWAITSECS}", 3),
]


def _test_config(text: str) -> str:
    for old, new, count in SPEEDUPS:
        assert text.count(old) == count, f"deploy/supervisord.conf: expected {old!r} {count}x"
        text = text.replace(old, new)
    return text


@dataclass
class System:
    """A supervisord run in ``root``, a directory laid out like the repository."""

    root: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.root / "deploy" / "supervisord.conf"

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.var / 'durq.db'}"

    def start(self) -> None:
        out = (self.var / "supervisord.out").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(self.config)],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()

    def ctl(self, *args: str) -> str:
        """Run supervisorctl against this system; its output."""
        done = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.config), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout + done.stderr

    def status(self) -> dict[str, tuple[str, int | None]]:
        """``supervisorctl status`` as {name: (state, pid)}."""
        found: dict[str, tuple[str, int | None]] = {}
        for line in self.ctl("status").splitlines():
            m = re.match(r"(\S+)\s+([A-Z]+)\s*(?:pid (\d+),)?", line)
            if m:
                found[m[1]] = (m[2], int(m[3]) if m[3] else None)
        return found

    def durq(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, DURQ_URL=self.url)
        return subprocess.run(
            [sys.executable, "-m", "durq", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def counts(self) -> dict[str, int]:
        """Jobs per state on the demo's queue, from ``durq stats --json``."""
        done = self.durq("stats", "--json")
        assert done.returncode == 0, done.stderr
        queue = json.loads(done.stdout)["queues"].get("default", {})
        states = ("queued", "running", "succeeded", "unprocessable", "cancelled")
        return {state: int(queue.get(state, 0)) for state in states}

    def supervisord_log(self) -> str:
        path = self.var / "supervisord.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log(self, program: str) -> Path:
        return self.var / "log" / f"{program.rpartition(':')[2]}.log"

    def diagnostics(self) -> str:
        """The tail of every log, for a failing assertion's message."""
        parts = [f"--- supervisord.log\n{self.supervisord_log()[-3000:]}"]
        for program in PROGRAMS:
            path = self.log(program)
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}")
        return "\n".join(parts)

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float = 30.0) -> T:
        """Poll ``check`` until it returns something other than None/False; that value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.diagnostics()}")

    def running_pid(self, program: str, not_pid: int | None = None) -> int | None:
        state, pid = self.status().get(program, ("MISSING", None))
        return pid if state == "RUNNING" and pid != not_pid else None

    def succeeded_more_than(self, n: int) -> int | None:
        succeeded = self.counts()["succeeded"]
        return succeeded if succeeded > n else None

    def drained(self) -> dict[str, int] | None:
        """The counts once nothing is queued or running, else None."""
        counts = self.counts()
        return counts if counts["queued"] == counts["running"] == 0 else None


def _has_job_line(log: Path) -> bool:
    return log.exists() and JOB_ID.search(log.read_text(errors="replace")) is not None


@pytest.fixture
def system(python_env: dict[str, str]) -> Iterator[System]:
    # A short root: the unix socket path (var/run/supervisor.sock) must fit in ~100 bytes,
    # which a pytest tmp_path under xdist may not.
    root = Path(tempfile.mkdtemp(prefix="durq-sv-"))
    (root / "deploy").mkdir()
    (root / "deploy" / "supervisord.conf").write_text(_test_config(CONFIG.read_text()))
    # The config runs %(here)s/../.venv/bin/durq; here that is this interpreter's durq.
    durq = root / ".venv" / "bin" / "durq"
    durq.parent.mkdir(parents=True)
    durq.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m durq "$@"\n')
    durq.chmod(0o755)
    # What `make run` does before it starts supervisord.
    (root / "var" / "log").mkdir(parents=True)
    (root / "var" / "run").mkdir()
    # Some attempts fail at random, so the retries are part of the run; with five attempts
    # a job that fails for good is a one-in-three-million event. Jobs that take a while keep
    # the consumers busy, so a SIGKILL or a shutdown often lands in the middle of one.
    # The dashboard's port comes from the environment, as `make run` gives it (PORT).
    env = dict(
        python_env, DURQ_DEMO_FAIL_RATE="0.05", DURQ_DEMO_WORK="0.2", DURQ_PORT=str(_free_port())
    )
    sv = System(root, env)
    yield sv
    if sv.proc is not None and sv.proc.poll() is None:
        sv.ctl("shutdown")
        try:
            sv.proc.wait(timeout=STOPWAITSECS + 20)
        except subprocess.TimeoutExpired:
            for _, pid in sv.status().values():
                if pid:
                    os.kill(pid, signal.SIGKILL)
            sv.proc.kill()
            sv.proc.wait()
    shutil.rmtree(root, ignore_errors=True)


def test_supervisor_restarts_crashed_processes_and_shuts_down_warm(system: System) -> None:
    system.start()
    for program in PROGRAMS:
        system.wait_for(f"{program} RUNNING", partial(system.running_pid, program))
    system.wait_for("the first jobs to succeed", lambda: system.succeeded_more_than(0))

    # Crash consumers at random, several times, and the producer once: each comes back.
    rng = random.Random()
    victims = [rng.choice(CONSUMERS) for _ in range(5)] + ["producer"]
    for victim in victims:
        old_pid = system.running_pid(victim)
        assert old_pid, f"{victim} not running\n{system.diagnostics()}"
        os.kill(old_pid, signal.SIGKILL)
        system.wait_for(
            f"{victim} restarted (RUNNING, pid other than {old_pid})",
            partial(system.running_pid, victim, not_pid=old_pid),
        )
        # The system keeps working between crashes.
        done = system.counts()["succeeded"]
        system.wait_for("more jobs to succeed", partial(system.succeeded_more_than, done))

    # Every process writes its own log, with job lines in it.
    for program in ["producer", *CONSUMERS]:
        log = system.log(program)
        system.wait_for(f"a job line in {log.name}", partial(_has_job_line, log))
    for program in CONSUMERS:
        # Its own file: only this consumer's worker id (…:consumer-NN, from the config).
        text = system.log(program).read_text()
        worker_ids = set(re.findall(r"worker \S+:(consumer-\d\d) ", text))
        assert worker_ids == {program.rpartition(":")[2]}, text
    assert system.log("dashboard").exists()

    # Stop producing and let the consumers drain the queue: the jobs of the killed consumers
    # come back when their leases expire, failed attempts after their backoff.
    assert "stopped" in system.ctl("stop", "producer")
    counts = system.wait_for("the queue to drain", system.drained, timeout=60)
    enqueued = set(JOB_ID.findall(system.log("producer").read_text()))
    assert counts["unprocessable"] == counts["cancelled"] == 0, counts
    # A producer killed between its commit and its log line leaves a job it did not log.
    assert counts["succeeded"] >= len(enqueued) > 0, counts
    verify = system.durq("demo", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # Shut down under load: every process exits on its own within stopwaitsecs, and no job
    # is left running (each worker finished or released its job).
    assert "started" in system.ctl("start", "producer")
    done = system.counts()["succeeded"]
    system.wait_for("jobs to flow again", lambda: system.succeeded_more_than(done))
    log_before = len(system.supervisord_log())
    system.ctl("shutdown")
    assert system.proc is not None
    assert system.proc.wait(timeout=STOPWAITSECS + 20) == 0, system.diagnostics()
    shutdown_log = system.supervisord_log()[log_before:]
    assert "SIGKILL" not in shutdown_log, shutdown_log
    for program in PROGRAMS:
        name = program.rpartition(":")[2]
        assert f"stopped: {name} (exit status 0)" in shutdown_log, shutdown_log
    assert "Finished server process" in system.log("dashboard").read_text()
    assert system.counts()["running"] == 0
    assert system.durq("demo", "verify").returncode == 0
