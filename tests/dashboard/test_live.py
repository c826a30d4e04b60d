"""A real ``durq dashboard`` process under attack over real sockets: 150 MiB request bodies
must be refused without the server's memory growing, bad tokens and a missing database must
stop it at start, and a Kubernetes-style token (with its trailing newline) must work as a
Bearer header."""

from __future__ import annotations

import json
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import durq

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
ATTACK_BYTES = 150 * MIB
# How much the server's peak and current memory may grow over all the attacks: generous
# against allocator noise, far below the 150 MiB each attack offers (the old dashboard
# grew by over 60 MB on one).
MEMORY_GROWTH_KIB = 20 * 1024
TOKEN = "live-token-0123456789abcdef"
CSRF = "c" * 43  # any CSRF cookie makes the form be read: the attack that used to cost memory
# A urlencoded field of just under 1 MiB, repeated: each one fit the old per-field bound.
FIELD = b"f=" + b"x" * (MIB - 3) + b"&"


@dataclass
class Live:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak) from /proc, in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}


def live_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/live.db"


def dashboard_command(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "durq", "--db", live_db(tmp_path), "dashboard", *args]


def wait_for_port(process: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + 30
    while True:
        found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return int(found.group(1))
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)


@pytest.fixture
def live(tmp_path: Path, python_env: dict[str, str]) -> Iterator[Live]:
    # The token as a mounted Kubernetes secret hands it over: with a trailing newline.
    env = {**python_env, "DURQ_DASHBOARD_TOKEN": TOKEN + "\n"}
    durq.connect(live_db(tmp_path)).close()  # the dashboard never creates its database
    log = tmp_path / "dashboard.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            dashboard_command(tmp_path, "--port", "0"), env=env, stdout=out, stderr=out
        )
    try:
        yield Live(process, wait_for_port(process, log), log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- a raw HTTP client that can lie --------------------------------------------------------


def request_head(port: int, framing: str) -> bytes:
    lines = [
        "POST /login HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/x-www-form-urlencoded",
        f"Cookie: durq_csrf={CSRF}",
    ]
    if framing == "content-length":
        lines.append(f"Content-Length: {ATTACK_BYTES}")
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
    elif framing == "lying content-length, chunked body":
        lines += ["Content-Length: 100", "Transfer-Encoding: chunked"]
    elif framing == "short content-length":
        lines.append("Content-Length: 100")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def body_pieces(framing: str, total: int) -> Iterator[bytes]:
    """``total`` bytes of form fields in 64 KiB pieces, chunk-framed when the head says so."""
    chunked = "chunked" in framing
    field = memoryview(FIELD)
    for _ in range(total // len(FIELD)):
        for start in range(0, len(field), 64 * 1024):
            piece = bytes(field[start : start + 64 * 1024])
            yield b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece
    if chunked:
        yield b"0\r\n\r\n"


@dataclass
class Exchange:
    status: int | None  # of the first answer; None when none came
    sent: int  # body bytes the server took before it closed the connection
    closed: bool


def attack(port: int, framing: str, total: int = ATTACK_BYTES) -> Exchange:
    """Send a POST /login of ``total`` body bytes as fast as the server takes them, read its
    answer, and go on sending until the server closes the connection (bounded in time)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setblocking(False)
    pieces = body_pieces(framing, total)
    pending, sent, received, closed = request_head(port, framing), 0, b"", False
    deadline = time.monotonic() + 60
    try:
        while not closed and time.monotonic() < deadline:
            if not pending:
                pending = next(pieces, b"")
                if not pending and b"\r\n\r\n" in received:
                    break  # all sent (a server that read it all): nothing more to see
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], 1)
            if readable:
                data = sock.recv(65536)
                received += data
                closed = not data
            if writable and pending:
                n = sock.send(pending)
                sent, pending = sent + n, pending[n:]
    except (BrokenPipeError, ConnectionResetError):
        # The server hung up while this side was still sending; its answer may be waiting.
        closed = True
        received += drain(sock)
    finally:
        sock.close()
    status = re.match(rb"HTTP/1\.1 (\d{3}) ", received)
    return Exchange(int(status.group(1)) if status else None, sent, closed)


def drain(sock: socket.socket) -> bytes:
    """Whatever the peer sent that is still unread, after the connection broke."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    return data


def bearer_call(port: int, method: str, path: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# -- the tests -----------------------------------------------------------------------------


def test_150_mib_unauthenticated_logins_are_refused_and_memory_stays_flat(live: Live) -> None:
    # Warm up every path the attacks take (imports, templates, the 413 answer), so what is
    # measured after is what the attacks cost.
    for framing in ("chunked", "content-length", "short content-length"):
        attack(live.port, framing, total=2 * MIB)
    before = live.memory_kib()

    results = {
        framing: attack(live.port, framing)
        for framing in (
            "content-length",
            "chunked",
            "lying content-length, chunked body",
            "short content-length",
        )
    }
    after = live.memory_kib()

    for framing in ("content-length", "chunked", "lying content-length, chunked body"):
        assert results[framing].status == 413, (framing, results[framing])
    # Framed by its Content-Length, the body ends after 100 bytes (a form without its CSRF
    # field: 403); the server takes the rest for a broken next request and hangs up.
    assert results["short content-length"].status == 403
    for framing, result in results.items():
        assert result.closed and result.sent < ATTACK_BYTES // 4, (framing, result)
    assert after["VmHWM"] - before["VmHWM"] < MEMORY_GROWTH_KIB, (before, after)
    assert after["VmRSS"] - before["VmRSS"] < MEMORY_GROWTH_KIB, (before, after)
    assert live.process.poll() is None
    assert "Traceback" not in live.log.read_text()


def test_a_token_with_a_trailing_newline_works_as_bearer(live: Live) -> None:
    assert bearer_call(live.port, "GET", "/api/stats") == (200, {"queues": {}, "workers": 0})
    # The queue "..", named in the path as %2E%2E: no client or server rewrites it away.
    status, answer = bearer_call(live.port, "POST", "/api/queues/%2E%2E/pause")
    assert (status, answer) == (200, {"queue": "..", "paused": True})
    status, answer = bearer_call(live.port, "POST", "/api/queues/resume?name=..")
    assert (status, answer) == (200, {"queue": "..", "paused": False})


@pytest.mark.parametrize(
    ("how", "token"),
    [
        ("--token", "   "),
        ("env", "\n"),
        ("--token", "only-15-chars!!"),
        ("env", "  only-15-chars!!\n"),
    ],
)
def test_blank_and_short_tokens_stop_the_dashboard_at_start(
    tmp_path: Path, python_env: dict[str, str], how: str, token: str
) -> None:
    env = {k: v for k, v in python_env.items() if k != "DURQ_DASHBOARD_TOKEN"}
    args = ["--port", "0"]
    if how == "env":
        env["DURQ_DASHBOARD_TOKEN"] = token
    else:
        args += ["--token", token]
    for host in ("127.0.0.1", "0.0.0.0"):
        result = subprocess.run(
            dashboard_command(tmp_path, "--host", host, *args),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, result
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        stripped = len(token.strip())
        assert lines[0] == (
            f"error: refusing a dashboard token of {stripped} characters (surrounding "
            "whitespace not counted): use at least 16, e.g. $(openssl rand -hex 24)"
        )


def test_a_missing_database_stops_the_dashboard_before_it_listens(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    # A mistyped --db: one line and exit 1, and no empty database left behind. Nothing but
    # that line on stderr: uvicorn, which logs "Started server process" there, never ran.
    env = {k: v for k, v in python_env.items() if k != "DURQ_DASHBOARD_TOKEN"}
    result = subprocess.run(
        dashboard_command(tmp_path, "--port", "0"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result
    assert result.stdout == ""
    path = tmp_path / "live.db"
    assert result.stderr == f"error: no durq database at {path}; set DURQ_URL or --db\n"
    assert list(tmp_path.iterdir()) == []
