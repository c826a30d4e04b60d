"""Throwaway PostgreSQL clusters and PgBouncers for the fault tests, so that restarting or
killing a server never disturbs the tests running beside them.

A cluster is ``initdb`` into a temporary folder (owned by the ``postgres`` user: initdb
refuses to run as root), started on a free loopback port; a PgBouncer is started the same
way, in front of it. Both are stopped when the test is done.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest


def _bin(name: str) -> str:
    """A PostgreSQL server program of the newest installed version."""
    roots = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    for root in reversed(roots):
        if (root / name).exists():
            return str(root / name)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (the postgresql package provides it)")
    return found


def _folder(prefix: str) -> Path:
    """A new folder the ``postgres`` user can use (a test's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    _give_to_postgres(root)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a server program as the ``postgres`` user (as this user if that is not root)."""
    command = list(argv)
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)


def _give_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


class Cluster:
    """A PostgreSQL server of its own, on 127.0.0.1:``port``."""

    def __init__(self) -> None:
        root = _folder("durq-pg-")
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        for folder in (self.data, self.sockets):
            folder.mkdir()
            _give_to_postgres(folder)
        self.port = free_port()
        self.log = root / "server.log"
        self.log.touch()
        _give_to_postgres(self.log)
        initdb = _bin("initdb")
        _as_postgres(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str = "durq") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_postgres(
            _bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        _as_postgres(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def remove(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str = "durq") -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def terminate_backends(self, database: str = "durq") -> int:
        """``pg_terminate_backend`` every session on ``database``; how many there were."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
        return len(rows)


class Bouncer:
    """PgBouncer on 127.0.0.1:``port`` in front of ``cluster``, in ``mode`` pooling."""

    def __init__(self, cluster: Cluster, database: str, mode: str) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            pytest.fail("pgbouncer is not installed (the Debian package pgbouncer)")
        root = _folder("durq-pgbouncer-")
        self.root = root
        self.port = free_port()
        self.database = database
        users = root / "users.txt"
        users.write_text('"postgres" ""\n')
        config = root / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"{database} = host=127.0.0.1 port={cluster.port} dbname={database}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            f"unix_socket_dir = {root}\n"
            "auth_type = trust\n"
            f"auth_file = {users}\n"
            f"pool_mode = {mode}\n"
            "max_client_conn = 200\ndefault_pool_size = 10\n"
            f"logfile = {root / 'pgbouncer.log'}\npidfile = {root / 'pgbouncer.pid'}\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
        for path in (users, config):
            _give_to_postgres(path)
        command = [binary, str(config)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                log = self.root / "pgbouncer.log"
                assert self.process.poll() is None, log.read_text() if log.exists() else ""
                time.sleep(0.05)
        pytest.fail("pgbouncer did not start")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def stop(self) -> None:
        """Stop PgBouncer and delete its files."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
