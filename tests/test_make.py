"""A newcomer's first hour: the README's first snippet, `make install`, `make run`, `make start`,
`make status`, `make stop`, and what `make test` says about the suites it could not run.

The make targets run against a copy of the repository's Makefile and deploy/ in a temporary
directory, with a .venv whose programs are this interpreter (and this checkout's src), so the
real recipes and config run and neither the developer's own var/ nor another test is touched.
Every process a test starts carries a marker in its environment, which is how the tests see
that nothing is left running.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import durq

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = [*(f"consumer:consumer-{n:02d}" for n in range(4)), "dashboard", "producer"]
MARKER = "DURQ_MAKE_TEST"
AS_ROOT = os.geteuid() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Clone:
    """The Makefile and deploy/ of this checkout in ``root``, with a stand-in .venv."""

    root: Path
    env: dict[str, str]

    @property
    def var(self) -> Path:
        return self.root / "var"

    def make(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ctl(self, *args: str) -> str:
        """supervisorctl on the copy's config, as a person would type it; its output."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "supervisor.supervisorctl",
                "-c",
                "deploy/supervisord.conf",
                *args,
            ],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout + done.stderr

    def leftovers(self) -> list[str]:
        """Every live process started for this copy: ``pid command`` each."""
        marker = f"{MARKER}={self.root}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if marker not in (proc / "environ").read_bytes().split(b"\0"):
                    continue
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue  # gone, or not ours to read
            found.append(f"{proc.name} {command}")
        return found

    def kill_leftovers(self) -> None:
        if self.leftovers():
            self.ctl("shutdown")
            deadline = time.monotonic() + 60
            while self.leftovers() and time.monotonic() < deadline:
                time.sleep(0.2)
        for line in self.leftovers():
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _shim(path: Path, command: str) -> None:
    path.write_text(f"#!/bin/sh\n{command}\n")
    path.chmod(0o755)


@pytest.fixture
def clone(python_env: dict[str, str]) -> Iterator[Clone]:
    # A short root: supervisord's socket path (var/run/supervisor.sock) must fit ~100 bytes.
    root = Path(tempfile.mkdtemp(prefix="durq-mk-"))
    shutil.copy(REPO / "Makefile", root)
    shutil.copy(REPO / "pyproject.toml", root)
    (root / "deploy").mkdir()
    for name in ("supervisord.conf", "durqctl.py"):
        shutil.copy(REPO / "deploy" / name, root / "deploy")
    # The .venv that `make install` would create, made of this interpreter: make finds its
    # stamp newer than pyproject.toml and installs nothing.
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = shlex.quote(sys.executable)
    _shim(bin_dir / "python", f'exec {python} "$@"')
    _shim(bin_dir / "durq", f'exec {python} -m durq "$@"')
    past = time.time() - 3600
    os.utime(root / "pyproject.toml", (past, past))
    (root / ".venv" / ".installed").touch()
    env = dict(python_env)
    # Not the make that may be running these tests, nor a PORT or queue from outside.
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PORT", "DURQ_PORT", "DURQ_URL"):
        env.pop(name, None)
    env[MARKER] = str(root)
    made = Clone(root, env)
    yield made
    made.kill_leftovers()
    shutil.rmtree(root, ignore_errors=True)


def _statuses(text: str) -> dict[str, str]:
    """{program: state} from lines like supervisorctl's ``name   STATE   pid N, …``."""
    return dict(re.findall(r"^\s*(\S+)\s+([A-Z]+)\s+pid \d+", text, re.M))


def _crit_lines(log: str) -> list[str]:
    """supervisord's CRIT lines, but for the one that running as root must give."""
    return [
        line
        for line in log.splitlines()
        if " CRIT " in line and not (AS_ROOT and "Supervisor is running as root" in line)
    ]


# What each program logs once it has started.
READY = {
    **{f"consumer-{n:02d}": "started: queues=" for n in range(4)},
    "dashboard": "Uvicorn running on",
    "producer": "enqueued job",
}


def _logged(clone: Clone, program: str, text: str) -> bool:
    log = clone.var / "log" / f"{program}.log"
    return log.exists() and text in log.read_text(errors="replace")


# --- make status / stop / start / run ------------------------------------------------------------


@pytest.mark.slow
def test_status_and_stop_with_nothing_running_say_so(clone: Clone) -> None:
    for target in ("status", "stop"):
        done = clone.make(target)
        # Exit 0, one line, no socket error from supervisorctl and no error from make.
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("durq is not running"), done.stdout
        assert done.stdout.count("\n") == 1, done.stdout
        assert done.stderr == ""
    # Before .venv exists (a fresh clone): the same, without installing anything.
    shutil.rmtree(clone.root / ".venv")
    for target in ("status", "stop"):
        done = clone.make(target)
        assert (done.returncode, done.stdout, done.stderr) == (0, "durq is not running.\n", "")
    assert not (clone.root / ".venv").exists()


@pytest.mark.slow
def test_start_and_run_refuse_a_taken_port(clone: Clone) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for target in ("start", "run"):
            done = clone.make(target, f"PORT={port}", timeout=60)
            out = done.stdout + done.stderr
            assert done.returncode != 0, out
            assert f"the dashboard's port {port} on 127.0.0.1 is taken" in done.stdout, out
            assert f"make {target} PORT=" in done.stdout, out
            assert "RUNNING" not in out and "Ctrl-C" not in out, out
            assert clone.leftovers() == []
            assert not (clone.var / "supervisord.pid").exists()


@pytest.mark.slow
def test_start_status_second_start_and_stop(clone: Clone) -> None:
    port = _free_port()
    started = time.monotonic()
    done = clone.make("start", f"PORT={port}")
    took = time.monotonic() - started
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert done.stderr == ""
    # The URL to paste: sqlite:/// and an absolute path, four slashes in all.
    assert f"DURQ_URL=sqlite:///{clone.var / 'durq.db'} " in out, out
    assert f"http://127.0.0.1:{port}" in out
    assert _statuses(out) == dict.fromkeys(PROGRAMS, "RUNNING"), out
    assert took < 20, f"make start took {took:.1f}s"

    # What it said is so: supervisorctl agrees, and the dashboard answers on that port.
    assert _statuses(clone.ctl("status")) == dict.fromkeys(PROGRAMS, "RUNNING")
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                assert r.status == 200
                break
        except OSError:
            assert time.monotonic() < deadline, "the dashboard does not answer"
            time.sleep(0.2)
    log = (clone.var / "supervisord.log").read_text()
    assert "running without any HTTP authentication" not in log
    assert _crit_lines(log) == [], log

    # A second start, and a run, while it runs: durq's own supervisord, named as such.
    pid = (clone.var / "supervisord.pid").read_text()
    again = clone.make("start", f"PORT={port}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith(f"durq is already running (supervisord pid {pid.strip()}")
    assert "Another program" not in again.stdout + again.stderr
    run = clone.make("run", f"PORT={_free_port()}", timeout=60)
    assert run.returncode != 0
    assert run.stdout.startswith("durq is already running"), run.stdout + run.stderr
    assert (clone.var / "supervisord.pid").read_text() == pid

    status = clone.make("status")
    assert status.returncode == 0 and status.stderr == ""
    assert _statuses(status.stdout) == dict.fromkeys(PROGRAMS, "RUNNING"), status.stdout

    # Stopped once every worker is past its start, so that the stop is the warm one.
    deadline = time.monotonic() + 30
    while not all(_logged(clone, program, READY[program]) for program in READY):
        assert time.monotonic() < deadline, "the programs did not all get going"
        time.sleep(0.2)
    log_before = len((clone.var / "supervisord.log").read_text())
    stop = clone.make("stop")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert stop.stdout.rstrip().endswith("durq: stopped") and stop.stderr == ""
    stop_log = (clone.var / "supervisord.log").read_text()[log_before:]
    for program in PROGRAMS:
        assert f"stopped: {program.rpartition(':')[2]} (exit status 0)" in stop_log, stop_log
    # It returned after everything exited: no process left, the port free again.
    assert clone.leftovers() == []
    assert _port_is_free(port)
    assert clone.make("status").stdout.startswith("durq is not running")


@pytest.mark.slow
def test_start_names_a_program_that_does_not_start_and_stops_the_rest(clone: Clone) -> None:
    # A dashboard that dies at once, as one whose extra is missing or whose port was taken
    # between the check and its start would.
    python = shlex.quote(sys.executable)
    _shim(
        clone.root / ".venv" / "bin" / "durq",
        'if [ "$1" = dashboard ]; then echo "dashboard: cannot start (the test)" >&2; exit 1; fi\n'
        f'exec {python} -m durq "$@"',
    )
    done = clone.make("start", f"PORT={_free_port()}", timeout=90)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert re.search(r"^durq: dashboard did not start: (BACKOFF|FATAL|EXITED) ", out, re.M), out
    assert "    dashboard: cannot start (the test)" in out  # the end of its log
    assert "durq: not started; stopped the programs that did start." in out
    assert "durq: started" not in out
    assert clone.leftovers() == []


@pytest.mark.slow
def test_run_in_the_foreground_until_ctrl_c(clone: Clone) -> None:
    port = _free_port()
    out_path = clone.root / "run.out"
    with out_path.open("wb") as out:
        # Its own session, so that Ctrl-C can be sent as a terminal sends it: to the group.
        proc = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=clone.root,
            env=clone.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Ctrl-C once the system works, as someone watching it would: every program RUNNING,
        # every worker past its start (the log line), the dashboard serving.
        deadline = time.monotonic() + 60
        while not (
            out_path.read_text().count("entered RUNNING state") == len(PROGRAMS)
            and all(_logged(clone, program, READY[program]) for program in READY)
        ):
            assert proc.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) is not None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = out_path.read_text()
    assert f"  dashboard: http://127.0.0.1:{port}\n" in text
    assert f"DURQ_URL=sqlite:///{clone.var / 'durq.db'} " in text
    assert "running without any HTTP authentication" not in text
    assert _crit_lines(text) == [], text
    if AS_ROOT:
        # The CRIT line that cannot be configured away comes with its explanation above it.
        assert text.index("note:      running as root") < text.index("running as root.")
    for program in PROGRAMS:
        assert f"stopped: {program.rpartition(':')[2]} (exit status 0)" in text, text
    assert clone.leftovers() == []


@pytest.mark.slow
def test_install_ends_with_how_to_activate(clone: Clone) -> None:
    done = clone.make("install")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith(". .venv/bin/activate"), done.stdout


# --- the README's first snippet -------------------------------------------------------------------


def _intro_blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block in the README before its first section."""
    intro = (REPO / "README.md").read_text().split("\n## ", 1)[0]
    return re.findall(r"^```(\w*)\n(.*?)^```", intro, re.M | re.S)


def test_readme_first_snippet_runs_in_an_empty_directory(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    (lang1, tasks), (lang2, enqueue), (lang3, worker) = _intro_blocks()[:3]
    assert (lang1, lang2, lang3) == ("python", "python", "sh")
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in python_env.items() if k not in ("DURQ_URL", "DURQ_APP")}

    # The tasks module, where its first line says it goes.
    path = re.match(r"# (\S+\.py)\n", tasks)
    assert path, tasks
    (empty / path[1]).parent.mkdir(parents=True, exist_ok=True)
    (empty / path[1]).write_text(tasks)

    # The application's enqueue, as a script run in the directory; it prints the job's id.
    done = subprocess.run(
        [sys.executable, "-c", f"{enqueue}\nprint(job.id)"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.split()[-1]

    # The worker command, with --burst so that it exits once the queue is empty.
    command = shlex.split(worker, comments=True)
    assert command[:2] == ["durq", "worker"], worker
    done = subprocess.run(
        [sys.executable, "-m", "durq", *command[1:], "--burst"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr

    databases = [p.name for p in empty.rglob("*.db")]
    assert len(databases) == 1, databases
    with durq.connect(f"sqlite:///{empty / databases[0]}") as q:
        job = q.get(job_id)
    assert job.state is durq.JobState.SUCCEEDED, job
    assert job.result == {"sent_to": "ada@example.com"}


# --- what `make test` says about the suites it could not run ------------------------------------

# A test of each kind, skipping as the real ones do: the PostgreSQL one through pg_support,
# the browser one with the browser tests' message.
NEEDS = """
import pytest


def test_postgres():
    import pg_support

    pg_support.server_url()


def test_browser():
    pytest.skip("/usr/bin/chromium is missing (apt-get install -y chromium); required in CI")


def test_plain():
    pass
"""


def _pytest(where: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """pytest on ``where`` with tests/conftest.py as a plugin, as in this suite."""
    env = dict(env, PYTHONPATH=os.pathsep.join((str(REPO / "tests"), env["PYTHONPATH"])))
    env.pop("CI", None)  # in CI a missing suite fails instead of skipping
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", *args],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_skipped_suites_are_counted_last_with_the_command_that_runs_them(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    (tmp_path / "test_needs.py").write_text(NEEDS)
    # Empty: no PostgreSQL, and none looked for.
    env = dict(python_env, DURQ_TEST_POSTGRES_URL="")
    done = _pytest(tmp_path, env, "-rs", "test_needs.py")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"=+ 1 passed, 2 skipped in .* =+", lines[-1]), done.stdout
    # Last, below pytest's own list of skips.
    assert lines[-6:-1] == [
        lines[-6],
        "1 test skipped for want of PostgreSQL; to run them:",
        "    DURQ_TEST_POSTGRES_URL=postgresql://user@host:5432/db make test",
        "1 test skipped for want of Chromium (/usr/bin/chromium); to run them:",
        "    apt-get install -y chromium && make test",
    ], done.stdout
    assert "durq: optional suites" in lines[-6]
    assert done.stdout.index("short test summary") < done.stdout.index("durq: optional suites")


def _local_postgres_answers() -> bool:
    import psycopg

    try:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def test_a_local_postgresql_is_used_without_being_named(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    (tmp_path / "test_needs.py").write_text(NEEDS)
    env = {k: v for k, v in python_env.items() if k != "DURQ_TEST_POSTGRES_URL"}
    done = _pytest(tmp_path, env, "test_needs.py::test_postgres", "-n", "1")
    if _local_postgres_answers():
        # Found by the main process and used by its xdist worker.
        assert "1 passed" in done.stdout.splitlines()[-1], done.stdout
        assert (
            "PostgreSQL tests use postgresql://postgres@127.0.0.1:5432/postgres: found running"
            in done.stdout
        )
    else:
        assert "1 skipped" in done.stdout.splitlines()[-1], done.stdout
        assert "1 test skipped for want of PostgreSQL; to run them:" in done.stdout
