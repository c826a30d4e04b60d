"""A payload nested absurdly deep cannot break the system: it is refused at the door with
one line, and one stored behind durq's back breaks no page, API route, command or worker
(docs/design.md, "Bad input and hostile payloads"). On every backend."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

import durq
from durq.cli import main
from durq.codec import READ_DEPTH
from durq.dashboard.app import create_app

HERE = Path(__file__).resolve().parent


def deep_text(depth: int) -> str:
    return "[" * depth + "0" + "]" * depth


def test_the_command_line_refuses_deep_payloads_in_one_line(queue_url: str) -> None:
    runner = CliRunner()
    for depth in (65, 950, 990, 100_000):
        result = runner.invoke(main, ["--db", queue_url, "enqueue", deep_text(depth)])
        assert result.exit_code == 1, result.output
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "nests deeper than" in result.stderr
    lines = '{"n": 1}\n' + deep_text(990) + "\n"
    result = runner.invoke(main, ["--db", queue_url, "enqueue", "-"], input=lines)
    assert result.exit_code == 1 and result.stderr.startswith("error: line 2")
    assert result.stderr.count("\n") == 1
    with durq.connect(queue_url) as q:
        assert q.list_jobs() == []


def test_a_stored_deep_payload_breaks_no_reader(
    queue_url: str, write_behind_durq: Callable[[str, str, str], None], python_env: dict[str, str]
) -> None:
    too_deep = deep_text(1000)
    with durq.connect(queue_url) as q:
        victim = q.enqueue({"fine": True}, queue="deep")
        q.enqueue("x", queue="done")
        claimed = q.claim("w", queues=["done"], lease=60)
        assert claimed is not None
        done = q.complete(claimed, "ok")
        # A queued job with a deep payload, a finished one with a deep result.
        write_behind_durq(victim.id, "payload", too_deep)
        write_behind_durq(done.id, "result", deep_text(READ_DEPTH + 5))

        with TestClient(create_app(q)) as client:
            for path in (
                "/",
                "/jobs",
                "/jobs?queue=deep",
                f"/jobs/{victim.id}",
                f"/jobs/{done.id}",
                "/api/jobs",
                f"/api/jobs/{victim.id}",
                f"/api/jobs/{done.id}",
                "/api/stats",
                "/metrics",
            ):
                response = client.get(path)
                assert response.status_code == 200, (path, response.text[:300])
            shown = client.get(f"/api/jobs/{victim.id}").json()["job"]["payload"]
            assert shown == too_deep  # the raw text, as a string

        runner = CliRunner()
        for args in (
            ["jobs", "list"],
            ["jobs", "list", "--json"],
            ["jobs", "show", victim.id],
            ["jobs", "show", done.id, "--json"],
            ["export", "--state", "queued"],
        ):
            result = runner.invoke(main, ["--db", queue_url, *args])
            assert result.exit_code == 0, (args, result.output, result.stderr)

    # A real worker fails the job for good, without running the handler, and carries on.
    worker = subprocess.run(
        [
            *(sys.executable, "-m", "durq", "--db", queue_url, "worker"),
            *("--handler", "handlers:ok", "--queue", "deep", "--burst"),
        ],
        env={**python_env, "PYTHONPATH": f"{HERE}:{python_env['PYTHONPATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stderr
    with durq.connect(queue_url) as q:
        job = q.get(victim.id)
        assert job.state is durq.JobState.UNPROCESSABLE
        assert job.last_error is not None and "payload cannot be read" in job.last_error
        assert json.dumps(job.to_dict())
