"""``durq`` in a real terminal and through real pipes, in processes of their own.

A pseudo-terminal (the ``pty`` module) of a known size stands for the terminal: tables fit
it and long commands draw a progress bar there. Through pipes the same commands print no
bar, no escape codes, and nothing cut.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

import durq

BAR = "━"  # what rich draws a progress bar with
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LONG_ERROR = "ValueError: the mail server said no " + "and no again " * 20 + "(the end)"
MANY = 1201  # more than two of the backends' 500-job batches


@pytest.fixture
def queue_url(tmp_path: Path) -> str:
    """SQLite only: terminals and pipes are the CLI's business, not the backend's."""
    return f"sqlite:///{tmp_path}/durq.db"


@pytest.fixture
def term_env(python_env: dict[str, str]) -> dict[str, str]:
    """The environment of a plain terminal session: nothing that tells rich what to do."""
    env = {k: v for k, v in python_env.items() if k not in _RICH_SWITCHES}
    env["TERM"] = "xterm-256color"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


_RICH_SWITCHES = {"COLUMNS", "LINES", "TTY_COMPATIBLE", "FORCE_COLOR", "NO_COLOR", "TERM"}


def in_terminal(command: str, env: dict[str, str], columns: int = 80) -> tuple[int, str]:
    """Run ``command`` (a shell line) with a pseudo-terminal ``columns`` wide as its stdin,
    stdout and stderr; its exit status and everything it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(
        ["sh", "-c", command], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal has exited
                break
            if not chunk:
                break
            out += chunk
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, out.decode().replace("\r\n", "\n")


def durq_cmd(url: str, *args: str) -> str:
    return " ".join([sys.executable, "-m", "durq", "--db", url, *args])


def through_pipes(url: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**env, "COLUMNS": "80"}  # as a terminal's shell would set it: pipes ignore it
    return subprocess.run(
        [sys.executable, "-m", "durq", "--db", url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def plain(text: str) -> list[str]:
    return [_ANSI.sub("", line) for line in text.splitlines()]


# -- tables ----------------------------------------------------------------------------------


def failed_jobs(q: durq.JobQueue, n: int) -> list[durq.Job]:
    jobs = q.enqueue_many([{"n": i} for i in range(n)], queue="mail", task="myapp.tasks.send")
    for _ in jobs:
        claimed = q.claim("host-a:42", lease=60)
        assert claimed is not None
        q.fail(claimed, f"Traceback (most recent call last):\n{LONG_ERROR}", retry=False)
    return jobs


def test_jobs_list_fits_a_real_80_column_terminal(
    queue_url: str, queue: durq.JobQueue, term_env: dict[str, str]
) -> None:
    jobs = failed_jobs(queue, 4)
    code, out = in_terminal(durq_cmd(queue_url, "jobs", "list"), term_env, columns=80)
    assert code == 0, out
    lines = plain(out)
    assert all(cell_len(line) <= 80 for line in lines), out
    for name in ("ID", "QUEUE", "STATE", "ATTEMPTS"):
        assert name in lines[0]
    shown = [line.split()[0] for line in lines[2:] if line.strip()]
    assert len(shown) == len(jobs)
    for short in shown:
        [job] = [j for j in jobs if j.id.startswith(short)]
        assert len(short) < 36
        code, detail = in_terminal(durq_cmd(queue_url, "jobs", "show", short), term_env)
        assert code == 0 and job.id in detail, detail


def test_jobs_list_through_a_pipe_is_whole(
    queue_url: str, queue: durq.JobQueue, term_env: dict[str, str]
) -> None:
    jobs = failed_jobs(queue, 3)
    done = through_pipes(queue_url, term_env, "jobs", "list")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "…" not in done.stdout
    lines = done.stdout.splitlines()
    assert len(lines) == 2 + len(jobs)
    for job in jobs:
        [row] = [line for line in lines if job.id in line]
        assert LONG_ERROR in row  # the whole last line of the error, on the job's own line


def test_jobs_show_through_a_pipe_shows_each_error_whole(
    queue_url: str, queue: durq.JobQueue, term_env: dict[str, str]
) -> None:
    [job] = failed_jobs(queue, 1)
    done = through_pipes(queue_url, term_env, "jobs", "show", job.id[:13])
    assert done.returncode == 0, done.stderr
    assert "Traceback (most recent call last):" in done.stdout
    assert LONG_ERROR in done.stdout and "…" not in done.stdout


# -- progress bars ---------------------------------------------------------------------------


def test_long_commands_draw_a_bar_on_a_terminal(
    queue_url: str, queue: durq.JobQueue, term_env: dict[str, str], tmp_path: Path
) -> None:
    queue.enqueue_many(list(range(MANY)), queue="bulk")
    steps = [
        (("jobs", "cancel", "--state", "queued"), "cancelling queued jobs", f"cancelled {MANY}"),
        (
            ("jobs", "resubmit", "--state", "cancelled"),
            "resubmitting cancelled jobs",
            f"resubmitted {MANY}",
        ),
    ]
    for args, label, said in steps:
        code, out = in_terminal(durq_cmd(queue_url, *args), term_env)
        assert code == 0, out
        assert BAR in out and label in out and f"{MANY:,}/{MANY:,}" in out
        assert plain(out)[-1].endswith(f"{said} jobs")  # the bar is cleared; the result stays

    dump = tmp_path / "jobs.jsonl"
    code, out = in_terminal(durq_cmd(queue_url, "export", ">", str(dump)), term_env)
    assert code == 0, out
    assert BAR in out and "exporting queued jobs" in out
    assert len(dump.read_text().splitlines()) == MANY  # the bar went to the terminal only

    other = f"sqlite:///{tmp_path}/other.db"
    code, out = in_terminal(durq_cmd(other, "import", str(dump)), term_env)
    assert code == 0, out
    assert BAR in out and "importing jobs" in out
    assert plain(out)[-1].endswith(f"imported {MANY} jobs")

    assert queue.cancel_all("queued") == MANY
    time.sleep(0.01)
    code, out = in_terminal(durq_cmd(queue_url, "jobs", "purge", "--older-than", "0s"), term_env)
    assert code == 0, out
    assert BAR in out and "purging" in out
    assert plain(out)[-1].endswith(f"purged {MANY} jobs")


def test_export_to_the_terminal_itself_draws_no_bar(
    queue_url: str, queue: durq.JobQueue, term_env: dict[str, str]
) -> None:
    # Its lines go to the terminal: a bar there would be torn up by them.
    queue.enqueue_many(list(range(10)))
    code, out = in_terminal(durq_cmd(queue_url, "export"), term_env)
    assert code == 0, out
    assert BAR not in out
    assert [json.loads(line)["payload"] for line in plain(out)] == list(range(9, -1, -1))


def test_long_commands_through_pipes_print_only_their_result(
    queue_url: str, queue: durq.JobQueue, term_env: dict[str, str], tmp_path: Path
) -> None:
    queue.enqueue_many(list(range(MANY)), queue="bulk")

    def quiet(url: str, *args: str, said: str | None = None) -> str:
        done = through_pipes(url, term_env, *args)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert BAR not in done.stdout and "\x1b" not in done.stdout
        if said is not None:
            assert done.stdout == f"{said}\n"
        return done.stdout

    quiet(queue_url, "jobs", "cancel", "--state", "queued", said=f"cancelled {MANY} jobs")
    quiet(queue_url, "jobs", "resubmit", "--state", "cancelled", said=f"resubmitted {MANY} jobs")
    dump = tmp_path / "jobs.jsonl"
    dump.write_text(quiet(queue_url, "export"))
    assert len(dump.read_text().splitlines()) == MANY
    quiet(f"sqlite:///{tmp_path}/other.db", "import", str(dump), said=f"imported {MANY} jobs")
    assert queue.cancel_all("queued") == MANY
    time.sleep(0.01)
    quiet(queue_url, "jobs", "purge", "--older-than", "0s", said=f"purged {MANY} jobs")
