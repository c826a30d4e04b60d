"""PostgreSQL for tests: a template database made once per test process, copied per test.

``CREATE DATABASE … TEMPLATE`` copies a migrated durq database in a few milliseconds, so every
test gets a fresh, empty queue without running the migrations again (procrastinate does the
same). Names carry the pytest process id, so xdist workers and parallel test sessions on one
server never share a database; databases left by a killed session are dropped by the next.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

import durq

ENV = "DURQ_TEST_POSTGRES_URL"
_PREFIX = "durq_t"
_NAME = re.compile(rf"^{_PREFIX}(?:pl)?_(\d+)_")

_template: str | None = None
_serial = itertools.count()


# The server the tests use when $DURQ_TEST_POSTGRES_URL is unset and this one answers: a local
# PostgreSQL that lets its superuser in over TCP (trust, or a password from ~/.pgpass).
LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


def local_server() -> str | None:
    """``LOCAL`` if a server answers there (as postgres, without a password) within 2 s.

    The test session's start calls this (tests/conftest.py) when $DURQ_TEST_POSTGRES_URL is
    unset, so that `make test` on a machine with PostgreSQL runs its tests without being told.
    """
    try:
        # 2 s: libpq's shortest connect_timeout; a refused connection fails at once.
        with psycopg.connect(LOCAL, connect_timeout=2):
            return LOCAL
    except psycopg.Error:
        return None


def server_url() -> str:
    """The test server's URL; skip without it (fail in CI, where it must be set)."""
    url = os.environ.get(ENV)
    if not url:
        why = "it is empty" if ENV in os.environ else f"unset, and no server answered at {LOCAL}"
        message = f"PostgreSQL tests need ${ENV} ({why}), e.g. postgresql://user@host:5432/db"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI must set it)")
        pytest.skip(message)
    return url


def database_url(name: str) -> str:
    """The server URL with its database replaced by ``name``."""
    return urlunsplit(urlsplit(server_url())._replace(path=f"/{name}"))


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    url = server_url()
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        # The variable is set, so PostgreSQL tests were asked for: fail, never skip.
        where = conninfo_to_dict(url).get("host", "?")
        pytest.fail(f"PostgreSQL at {where} ({ENV}) is unreachable: {exc}")


def _drop(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    # FORCE ends sessions a crashed or killed test left behind.
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop_leftovers() -> None:
    """Drop the databases of test sessions that died without cleaning up, each on a
    connection of its own: PostgreSQL answers an ALTER of a database whose DROP was cut short
    ("invalid", ``datconnlimit = -2``) with a FATAL error that closes the connection."""
    with _admin() as conn:
        found = conn.execute("SELECT datname, datconnlimit = -2 FROM pg_database").fetchall()
    for name, invalid in found:
        match = _NAME.match(str(name))
        if not match or _pid_alive(int(match.group(1))):
            continue
        try:
            with _admin() as conn:
                if not invalid:  # an invalid database can only be dropped
                    conn.execute(
                        sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name))
                    )
                _drop(conn, str(name))
        except (
            psycopg.errors.InvalidCatalogName,
            psycopg.errors.ObjectNotInPrerequisiteState,
            psycopg.OperationalError,
        ):
            # Another test process of this session is dropping it right now (a database
            # being dropped is "invalid" until it is gone, and altering it is FATAL).
            continue


def template() -> str:
    """The name of this process's migrated template database, made on first use."""
    global _template
    if _template is None:
        name = f"{_PREFIX}pl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        _drop_leftovers()
        with _admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        durq.connect(database_url(name)).close()  # runs the migrations
        with _admin() as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE true").format(sql.Identifier(name)))
        atexit.register(_drop_template, name)
        _template = name
    return _template


def _drop_template(name: str) -> None:
    try:
        with psycopg.connect(server_url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name))
            )
            _drop(conn, name)
    except (psycopg.Error, pytest.skip.Exception, pytest.fail.Exception):
        pass  # the next session drops it


def _copy_template() -> str:
    name = f"{_PREFIX}_{os.getpid()}_{next(_serial)}"
    with _admin() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template())
            )
        )
    return name


def _drop_quietly(name: str) -> None:
    try:
        with psycopg.connect(server_url(), autocommit=True, connect_timeout=5) as conn:
            _drop(conn, name)
    except (psycopg.Error, pytest.skip.Exception, pytest.fail.Exception):
        pass  # the next session drops it


class _Copies:
    """Copies of the template, the next one made in the background while a test runs.

    Creating and dropping a database takes the server a good half second on a busy machine;
    done by a helper thread they overlap with the tests instead of adding to them.
    """

    def __init__(self) -> None:
        self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-support")
        self._next: Future[str] | None = None
        atexit.register(self._close)

    def take(self) -> str:
        current = self._next or self._helper.submit(_copy_template)
        self._next = self._helper.submit(_copy_template)
        return current.result(timeout=300)

    def drop_later(self, name: str) -> None:
        self._helper.submit(_drop_quietly, name)

    def _close(self) -> None:
        self._helper.shutdown(wait=True)
        if self._next is not None and self._next.exception() is None:
            _drop_quietly(self._next.result())


_copies: _Copies | None = None


def fresh_database(request: pytest.FixtureRequest) -> str:
    """A database copied from the template, dropped after the test; returns its URL."""
    global _copies
    if _copies is None:
        template()  # made in this thread, so its failure is reported by the first test
        _copies = _Copies()
    name = _copies.take()
    request.addfinalizer(lambda: _copies.drop_later(name) if _copies else None)
    return database_url(name)


def empty_database(request: pytest.FixtureRequest) -> str:
    """Create a database without durq's schema (dropped when the test ends); its URL."""
    name = f"{_PREFIX}_{os.getpid()}_{next(_serial)}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop() -> None:
        with _admin() as conn:
            _drop(conn, name)

    request.addfinalizer(drop)
    return database_url(name)


def execute(
    url: str, statement: str, params: dict[str, object] | None = None
) -> list[tuple[object, ...]]:
    """Run one SQL statement on the database at ``url`` behind durq's back; its rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement.encode(), params)
        return cur.fetchall() if cur.description else []
