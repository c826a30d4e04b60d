"""The CLI's long-running applications: worker, produce, dashboard and demo verify.

Only their command-line wiring and error paths are here; the worker's real-process behaviour
(signals, crashes, leases) is tested in test_worker*.py.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import durq
from durq.cli import main


@pytest.fixture
def queue_url(tmp_path: Path) -> str:
    """SQLite only, overriding conftest's every-backend fixture: the CLI talks to ``JobQueue``
    alone, and test_cli_backends.py runs its end-to-end paths against every backend."""
    return f"sqlite:///{tmp_path}/durq.db"


def invoke(queue_url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["--db", queue_url, *args], env=env)


def one_error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert [line for line in lines if line.startswith("error: ")] == [lines[-1]]
    assert "Traceback" not in result.output
    return lines[-1]


# -- worker ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:handle", "no_such_module_xyz"),
        ("durq.demo:no_such_function", "no_such_function"),
        ("durq.demo", "package.module:function"),
    ],
)
def test_worker_bad_handler_stops_before_touching_the_queue(
    tmp_path: Path, spec: str, message: str
) -> None:
    db = tmp_path / "never.db"
    result = invoke(f"sqlite:///{db}", "worker", "--handler", spec)
    assert result.exit_code == 1
    assert message in one_error_line(result)
    assert not db.exists()  # the handler is loaded before the queue is opened


def test_worker_bad_handler_claims_nothing(queue_url: str, queue: durq.JobQueue) -> None:
    job = queue.enqueue({"n": 1})
    result = invoke(queue_url, "worker", "--handler", "no_such_module_xyz:handle", "--burst")
    assert result.exit_code == 1
    assert queue.get(job.id) == job


def test_worker_usage_errors(queue_url: str) -> None:
    assert invoke(queue_url, "worker").exit_code == 2  # --handler is required
    assert invoke(queue_url, "worker", "--handler", "m:f", "--lease", "0").exit_code == 2
    assert invoke(queue_url, "worker", "--handler", "m:f", "--max-jobs", "0").exit_code == 2


def test_worker_burst_runs_the_ready_jobs(queue_url: str, queue: durq.JobQueue) -> None:
    jobs = [queue.enqueue(n, queue="q1") for n in range(3)]
    other = queue.enqueue("not mine", queue="q2")
    result = invoke(
        queue_url, "worker", "--handler", "builtins:repr", "--queue", "q1", "--burst",
        "--worker-id", "cli-test",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for job in jobs:
        done = queue.get(job.id)
        assert done.state == "succeeded"
        assert done.result.startswith(f"Job(id='{job.id}'")  # repr(job), the handler's return
    assert queue.get(other.id).state == "queued"
    assert [a.worker_id for a in queue.attempts(jobs[0].id)] == ["cli-test"]


# -- produce ---------------------------------------------------------------------------------


def test_produce_count(queue_url: str, queue: durq.JobQueue) -> None:
    result = invoke(queue_url, "produce", "--count", "3", "--interval", "0", "--queue", "demo")
    assert result.exit_code == 0, result.output
    jobs = queue.list_jobs(limit=10)
    assert len(jobs) == 3
    assert {j.queue for j in jobs} == {"demo"}
    for job in jobs:
        assert set(job.payload) == {"account", "amount"}
        assert job.id in result.stderr  # each id is logged


def test_produce_usage_errors(queue_url: str, queue: durq.JobQueue) -> None:
    assert invoke(queue_url, "produce", "--interval", "-1", "--count", "1").exit_code == 2
    assert invoke(queue_url, "produce", "--count", "0").exit_code == 2
    result = invoke(queue_url, "produce", "--count", "1", "--queue", "bad name")
    assert result.exit_code == 1
    assert "bad queue name" in one_error_line(result)
    assert queue.list_jobs() == []


# -- dashboard -------------------------------------------------------------------------------


def test_dashboard_refuses_a_public_address_without_a_token(
    queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DURQ_DASHBOARD_TOKEN", raising=False)
    result = invoke(queue_url, "dashboard", "--host", "0.0.0.0", "--port", "0")
    assert result.exit_code == 1
    assert "token" in one_error_line(result)


def test_dashboard_without_its_extra(queue_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if `pip install durq` had been run without [dashboard]: its modules cannot import.
    for name in list(sys.modules):
        if name.startswith("durq.dashboard"):
            monkeypatch.delitem(sys.modules, name)
    for name in ("starlette", "uvicorn", "jinja2", "prometheus_client", "multipart"):
        monkeypatch.setitem(sys.modules, name, None)
    result = invoke(queue_url, "dashboard", "--port", "0")
    assert result.exit_code == 1
    assert "pip install 'durq[dashboard]'" in one_error_line(result)


def test_dashboard_port_out_of_range(queue_url: str) -> None:
    assert invoke(queue_url, "dashboard", "--port", "70000").exit_code == 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_dashboard_stops_cleanly_on_a_signal(
    tmp_path: Path, python_env: dict[str, str], stop: signal.Signals
) -> None:
    # Supervisor stops it with SIGTERM, a terminal with Ctrl-C: either way exit 0, quietly.
    port = free_port()
    url = f"sqlite:///{tmp_path}/q.db"
    durq.connect(url).close()  # the dashboard never creates a database
    command = [sys.executable, "-m", "durq", "--db", url]
    dashboard = subprocess.Popen(
        [*command, "dashboard", "--port", str(port)],
        env=python_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert dashboard.poll() is None, dashboard.communicate()[1]
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.1)
        dashboard.send_signal(stop)
        _, err = dashboard.communicate(timeout=30)
    finally:
        if dashboard.poll() is None:
            dashboard.kill()
            dashboard.communicate()
    assert dashboard.returncode == 0, err
    assert "Traceback" not in err and "Finished server process" in err


# -- demo verify -----------------------------------------------------------------------------


def test_demo_verify_end_to_end(queue_url: str, queue: durq.JobQueue, tmp_path: Path) -> None:
    env = {"DURQ_DEMO_FAIL_RATE": "0", "DURQ_DEMO_WORK": "0"}
    db = tmp_path / "durq.db"

    missing = invoke(queue_url, "demo", "verify", env=env)
    assert missing.exit_code == 1
    assert "no ledger" in missing.stdout
    assert one_error_line(missing) == f"error: the ledger in {db} has 1 discrepancy"

    assert invoke(queue_url, "produce", "--count", "4", "--interval", "0", env=env).exit_code == 0
    worked = invoke(
        queue_url, "worker", "--handler", "durq.demo:apply_transfer", "--burst", env=env
    )
    assert worked.exit_code == 0, worked.output
    assert {j.state for j in queue.list_jobs()} == {"succeeded"}

    ok = invoke(queue_url, "demo", "verify", env=env)
    assert (ok.exit_code, ok.stdout.strip()) == (0, f"ledger OK: {db}")

    with sqlite3.connect(db) as conn:  # break the invariant behind the demo's back
        conn.execute("UPDATE demo_balances SET balance = balance + 1")
    conn.close()
    broken = invoke(queue_url, "demo", "verify", env=env)
    assert broken.exit_code == 1
    assert "balance" in broken.stdout
    assert "discrepanc" in one_error_line(broken)


def test_worker_imports_handlers_from_the_current_directory(
    queue_url: str, queue: durq.JobQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "cli_tour_handler.py").write_text(
        "def send(job):\n    return {'sent': job.payload}\n"
    )
    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(project))])
    job = queue.enqueue("hello")
    result = invoke(queue_url, "worker", "--handler", "cli_tour_handler:send", "--burst")
    assert result.exit_code == 0, result.output
    assert queue.get(job.id).result == {"sent": "hello"}
