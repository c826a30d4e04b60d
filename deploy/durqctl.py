"""What `make run`, `make start`, `make status` and `make stop` do around supervisord.

    .venv/bin/python deploy/durqctl.py run|start [--port 8000]
    .venv/bin/python deploy/durqctl.py status|stop

supervisord alone leaves a newcomer with surprises: started a second time it complains about
"another program" (itself), `supervisorctl` with nothing running prints a socket error, and
`supervisord -c` returns before its programs have started, so a dashboard that cannot bind
its port goes unnoticed. This script makes the checks first and says what it found:

- run, start: refuse when durq is already running, or when the dashboard's port is taken;
- start: wait until every program is RUNNING, else name the ones that are not, show the end
  of their logs, stop the rest and exit 1;
- status, stop: "durq is not running" (exit 0) when it is not.

It talks to supervisord over its socket (XML-RPC, as supervisorctl does), with the socket
and credentials of the config's [supervisorctl] section. Run it with the virtualenv's Python:
it imports supervisor.
"""

from __future__ import annotations

import argparse
import configparser
import os
import socket
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.options import ClientOptions  # type: ignore[import-untyped]

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
CONFIG = DEPLOY / "supervisord.conf"
VAR = ROOT / "var"
# The dashboard listens here ([program:dashboard] in the config).
HOST = "127.0.0.1"
# RUNNING only means up for startsecs (1 s), less than a worker on a busy machine may take to
# import an app that then fails: `make start` waits until every program has been up this long.
SETTLED = 3
# Plenty for that, even with the machine busy.
START_TIMEOUT = 20.0
# Above the config's stopwaitsecs (40 s), the longest a warm shutdown may take.
STOP_TIMEOUT = 60.0
# A program in one of these states did not start: it exited, or exited too quickly.
FAILED = {"BACKOFF", "FATAL", "EXITED", "UNKNOWN"}
LOG_LINES = 12


def say(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


def supervisor_command(name: str) -> list[str]:
    """supervisord or supervisorctl of this interpreter's environment."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, "-m", f"supervisor.{name}"]


def server() -> Any:
    """An XML-RPC proxy for the supervisord of this config (connects on first call)."""
    options = ClientOptions()
    options.realize(args=["-c", str(CONFIG)])
    return options.getServerProxy()


def running_pid() -> int | None:
    """The pid of the supervisord serving this config's socket, or None when none answers."""
    try:
        return int(server().supervisor.getPID())
    except OSError:
        return None  # no socket file, or a stale one: nothing listens on it
    except xmlrpc.client.ProtocolError as exc:
        # Something answers but refuses us: a supervisord whose config has other credentials.
        say(f"durq: supervisord answers on var/run/supervisor.sock but refuses: {exc.errmsg}")
        sys.exit(1)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie left for a lax init to reap is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill
    return stat.rpartition(")")[2].split()[0] != "Z"


def durq_url() -> str:
    """The DURQ_URL the config gives every program, with its path made absolute and tidy."""
    parser = configparser.RawConfigParser()
    parser.read(CONFIG)
    environment = parser.get("supervisord", "environment", fallback="")
    for item in environment.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "DURQ_URL":
            url = value.strip().strip("\"'").replace("%(here)s", str(DEPLOY))
            prefix = "sqlite:///"
            if url.startswith(prefix):
                # sqlite:/// then the absolute path /…/deploy/../var/durq.db, tidied up.
                return prefix + os.path.normpath(url.removeprefix(prefix))
            return url
    return f"sqlite:///{VAR / 'durq.db'}"


def where(port: int) -> list[str]:
    url = durq_url()
    return [
        f"  dashboard: http://{HOST}:{port}",
        f"  database:  {url.removeprefix('sqlite:///')}   (the demo ledger is in it too)",
        f"  logs:      {VAR / 'log'}/*.log (supervisord: {VAR / 'supervisord.log'})",
        f"  watch:     DURQ_URL={url} .venv/bin/durq stats --watch",
    ]


def refuse_if_running(command: str) -> None:
    pid = running_pid()
    if pid is None:
        return
    say(
        f"durq is already running (supervisord pid {pid}, from `make start` or `make run`):",
        "  `make status` shows its programs, `make stop` stops them.",
    )
    # A second `make start` asked for what is already so; `make run` cannot attach to it.
    sys.exit(0 if command == "start" else 1)


def refuse_if_port_taken(command: str, port: int) -> None:
    # Bound the way uvicorn binds (SO_REUSEADDR), so that the connections of a dashboard
    # stopped a moment ago, still in TIME_WAIT, do not count as a taken port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
            return
        except OSError as exc:
            reason = exc.strerror or str(exc)
    say(
        f"durq: not started: the dashboard's port {port} on {HOST} is taken ({reason}).",
        f"  Stop what listens there, or choose another port: make {command} PORT={port + 1}",
    )
    sys.exit(1)


def root_note() -> list[str]:
    if os.geteuid() != 0:
        return []
    return [
        '  note:      running as root, so supervisord logs "CRIT Supervisor is running as root":',
        "             the programs run as root too. Harmless for the demo; run make as an",
        "             ordinary user, or set user= in [supervisord] (docs/running.md).",
    ]


def prepare_database() -> None:
    """Make the queue's database before the programs start. The dashboard refuses one that
    is not there (so a mistyped URL never shows as an empty queue), and it may well start
    before the producer's first job would have made it."""
    import durq

    try:
        durq.connect(durq_url()).close()
    except durq.DurqError as exc:
        say(f"durq: not started: {exc}")
        sys.exit(1)


def supervisord_env(port: int) -> dict[str, str]:
    # The config's [program:dashboard] reads its port as %(ENV_DURQ_PORT)s.
    return dict(os.environ, DURQ_PORT=str(port))


def run(port: int) -> None:
    """Foreground: supervisord -n; Ctrl-C stops every program and then supervisord."""
    refuse_if_running("run")
    refuse_if_port_taken("run", port)
    prepare_database()
    say(
        "durq: starting the producer, the consumers and the dashboard under Supervisor"
        " (deploy/supervisord.conf)",
        *where(port),
        "  stop:      Ctrl-C",
        *root_note(),
    )
    command = [*supervisor_command("supervisord"), "-n", "-c", str(CONFIG)]
    os.execve(command[0], command, supervisord_env(port))


def program_name(info: dict[str, Any]) -> str:
    group, name = info["group"], info["name"]
    return name if group == name else f"{group}:{name}"


def log_tail(info: dict[str, Any]) -> list[str]:
    # The config's paths go through %(here)s: /…/deploy/../var/log/…, tidied for reading.
    path = Path(os.path.normpath(info.get("stdout_logfile") or "."))
    if not path.is_file():
        return [f"    (no log at {path})"]
    lines = path.read_text(errors="replace").splitlines()[-LOG_LINES:]
    return [f"  last lines of {path}:", *(f"    {line}" for line in lines or ["(empty)"])]


def wait_until_running() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every program's info once all have been RUNNING for SETTLED seconds, or once any has
    failed (or at the deadline); and the programs that did not start."""
    proxy = server()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        infos: list[dict[str, Any]] = proxy.supervisor.getAllProcessInfo()
        failed = [i for i in infos if i["statename"] in FAILED]
        if failed:
            return infos, failed
        # STOPPED too is "not yet": supervisord lists its programs before it spawns them.
        waiting = [
            i for i in infos if i["statename"] != "RUNNING" or i["now"] - i["start"] < SETTLED
        ]
        if not waiting or time.monotonic() > deadline:
            return infos, waiting
        time.sleep(0.2)


def settle_others(failed: list[dict[str, Any]]) -> None:
    """Wait (a few seconds at most) until every program but ``failed`` has been up SETTLED."""
    proxy = server()
    skip = {program_name(i) for i in failed}
    deadline = time.monotonic() + SETTLED + 2
    while time.monotonic() < deadline:
        infos = proxy.supervisor.getAllProcessInfo()
        others = [i for i in infos if program_name(i) not in skip]
        if all(i["statename"] == "RUNNING" and i["now"] - i["start"] >= SETTLED for i in others):
            return
        time.sleep(0.2)


def shut_down(pid: int) -> bool:
    """Ask supervisord to stop every program and exit; whether it has within STOP_TIMEOUT."""
    try:
        server().supervisor.shutdown()
    except OSError:
        pass  # already gone
    deadline = time.monotonic() + STOP_TIMEOUT
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def start(port: int) -> None:
    """Daemonised: supervisord in the background; returns once every program is RUNNING."""
    refuse_if_running("start")
    refuse_if_port_taken("start", port)
    prepare_database()
    # supervisord reports a bad config or socket before it daemonises, so its exit status
    # tells those apart; the programs start after it has returned.
    done = subprocess.run(
        [*supervisor_command("supervisord"), "-c", str(CONFIG)], env=supervisord_env(port)
    )
    if done.returncode != 0:
        say(f"durq: not started: supervisord exited with status {done.returncode} (above)")
        sys.exit(1)
    pid = running_pid()
    if pid is None:
        say(f"durq: not started: supervisord exited at once; see {VAR / 'supervisord.log'}")
        sys.exit(1)
    infos, failed = wait_until_running()
    if not failed:
        say(
            f"durq: started (supervisord pid {pid}); every program is RUNNING:",
            *(f"  {program_name(i):<24} RUNNING   pid {i['pid']}" for i in infos),
            *where(port),
            "  status:    make status",
            "  stop:      make stop",
        )
        return
    for info in failed:
        state = info["statename"]
        why = info.get("spawnerr") or info.get("description") or ""
        if state not in FAILED:  # the deadline passed first: it keeps restarting, or is slow
            why = f"not up for {SETTLED} s in a row within {START_TIMEOUT:.0f} s"
        say(f"durq: {program_name(info)} did not start: {state} ({why})")
    # Let the others finish starting before they are stopped: a program stopped while it is
    # still starting dies of the signal rather than stopping warm, and a worker stopped just
    # as it connects may miss the signal and hold supervisord up until stopwaitsecs. By then
    # supervisord has also written all that the failed programs printed to their logs.
    settle_others(failed)
    for info in failed:
        say(*log_tail(info))
    stopped = shut_down(pid)
    say(
        "durq: not started; stopped the programs that did start"
        + ("." if stopped else f", but supervisord (pid {pid}) is still shutting down."),
        f"  supervisord's own log: {VAR / 'supervisord.log'}",
    )
    sys.exit(1)


def status() -> None:
    if running_pid() is None:
        say("durq is not running (`make start` starts it in the background, `make run` here).")
        return
    say(f"durq is running; DURQ_URL={durq_url()}")
    # supervisorctl exits 3 when a program is not RUNNING (one stopped by hand, say): the
    # table says so, and make need not add an error of its own.
    subprocess.run([*supervisor_command("supervisorctl"), "-c", str(CONFIG), "status"])


def stop() -> None:
    pid = running_pid()
    if pid is None:
        say("durq is not running.")
        return
    say(f"durq: stopping (supervisord pid {pid}); each consumer finishes or releases its jobs")
    if not shut_down(pid):
        say(f"durq: supervisord (pid {pid}) is still shutting down after {STOP_TIMEOUT:.0f} s")
        sys.exit(1)
    say("durq: stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "start", "status", "stop"])
    parser.add_argument("--port", type=int, default=8000, help="the dashboard's port")
    args = parser.parse_args()
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port}: not a TCP port")
    if args.command == "run":
        run(args.port)
    elif args.command == "start":
        start(args.port)
    elif args.command == "status":
        status()
    else:
        stop()


if __name__ == "__main__":
    main()
