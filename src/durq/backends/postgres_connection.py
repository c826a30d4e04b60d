"""The PostgreSQL backend's plumbing: the connection pool, migrations, transactions, LISTEN.

- A ``psycopg_pool`` pool per process, created lazily and created anew in a forked child
  (a child must never talk on its parent's sockets).
- Every connection speaks UTC and hands json columns over as text, which ``durq.codec``
  decodes (so no stored row can crash a reader).
- Idle workers wait on a dedicated ``LISTEN`` connection, outside the pool.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from durq.backends._sql import load_migrations
from durq.errors import BackendError, BackendUnavailable, InvalidJob, NoDatabase

try:
    import psycopg
    import psycopg_pool
    from psycopg import errors as pg_errors
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.types.json import set_json_loads
except ImportError as exc:  # the optional extra is not installed
    raise BackendError(
        "the PostgreSQL backend needs the 'postgres' extra: pip install 'durq[postgres]'"
    ) from exc

__all__ = ["pg_errors"]  # for postgres.py, once the extra is known to be installed

MIGRATIONS = load_migrations("postgres")
SCHEMA_VERSION = len(MIGRATIONS)

READY_CHANNEL = "durq_jobs"  # NOTIFY when a job became ready; the payload is its queue
FINISHED_CHANNEL = "durq_finished"  # NOTIFY when jobs finished
# Any constant will do, as long as every durq uses the same one: it serializes migrations.
_MIGRATION_LOCK = 0x6475_7271_6D69_6772  # "durqmigr"
_POOL_MAX = 4  # connections per process: the worker's runtime, a task's own, spares
_CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise
# Seconds a caller waits for a pooled connection: while the server is away a worker's call
# fails after this long (and is tried again), rather than blocking its loop for minutes.
_POOL_WAIT = 5.0

Connection = psycopg.Connection[Any]
Cursor = psycopg.Cursor[Any]


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def describe_url(url: str) -> str:
    """``user@host:port/dbname`` of a libpq URL, without the password, for messages."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise BackendError(f"bad PostgreSQL URL: {one_line(exc)}") from exc
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    user = str(params.get("user") or "")
    dbname = str(params.get("dbname") or user)
    return f"{user + '@' if user else ''}{host}:{port}/{dbname}"


def _json_text(data: str | bytes) -> str:
    return data if isinstance(data, str) else bytes(data).decode()


def configure(conn: Connection) -> None:
    # Times come back as UTC datetimes whatever the server's or role's default zone.
    conn.execute("SET TIME ZONE 'UTC'")
    set_json_loads(_json_text, conn)


# Every connection is made without server-side prepared statements. Behind a pooler in
# transaction mode (PgBouncer before 1.21) a statement prepared in one transaction is gone,
# or clashes, in the next (another server connection): 'prepared statement "_pg3_0" already
# exists'. Claims and outcomes go in batches, so parsing each statement costs little.
_OPTIONS: dict[str, Any] = {"autocommit": True, "prepare_threshold": None}
_IDLE_CHECK = 1.0  # seconds idle after which a pooled connection is checked before use


class _OwnPoolNoise(logging.Filter):
    """Drop psycopg_pool's warnings about durq's own pools (named ``durq-PID``), which come
    once per connection try: during an outage the worker says it once, and again when the
    database is back. Other pools of the same process keep their warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING:
            return True
        ours = record.threadName.startswith("durq-") if record.threadName else False
        return not (ours or "'durq-" in record.getMessage())


logging.getLogger("psycopg.pool").addFilter(_OwnPoolNoise())


# What libpq says, at connect, when the URL is wrong rather than the server away: psycopg
# gives such errors no SQLSTATE, so their words are all there is to tell them apart.
_WRONG_URL = re.compile(
    r"password authentication failed|no password supplied|database \".*\" does not exist"
    r"|role \".*\" does not exist|no pg_hba\.conf entry|invalid connection option"
    r"|could not translate host name|invalid (?:integer )?value for parameter"
)


def wrapped(where: str, exc: psycopg.Error, doing: str = "") -> BackendError:
    """``exc`` as a ``BackendError``: ``BackendUnavailable`` when trying again may work (the
    connection was lost, the server is restarting or out of connections, a serialization
    conflict), not when the credentials or the database name are wrong."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    lost = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    wrong = sqlstate[:2] in ("28", "3D") or (not sqlstate and _WRONG_URL.search(str(exc)))
    transient = lost and not wrong
    kind = BackendUnavailable if transient else BackendError
    return kind(f"{doing}PostgreSQL at {where}: {one_line(exc)}")


@contextmanager
def external_cursor(connection: Any, where: str) -> Iterator[Cursor]:
    """A cursor on the application's own psycopg connection, reading json as durq does
    (the connection's own settings are left alone). Its statements join the transaction the
    connection has open; nothing is committed here. Driver errors become ``BackendError``."""
    if not isinstance(connection, psycopg.Connection):
        raise InvalidJob(
            f"the connection must be a psycopg Connection, not {type(connection).__name__}"
        )
    try:
        with connection.cursor() as cursor:
            set_json_loads(_json_text, cursor)
            yield cursor
    except psycopg.Error as exc:
        raise wrapped(where, exc) from exc


@asynccontextmanager
async def external_cursor_async(connection: Any, where: str) -> AsyncIterator[Any]:
    """``external_cursor`` for a psycopg ``AsyncConnection``."""
    if not isinstance(connection, psycopg.AsyncConnection):
        raise InvalidJob(
            f"the connection must be a psycopg AsyncConnection, not {type(connection).__name__}"
        )
    try:
        async with connection.cursor() as cursor:
            set_json_loads(_json_text, cursor)
            yield cursor
    except psycopg.Error as exc:
        raise wrapped(where, exc) from exc


class PostgresConnection:
    """This process's connections to one durq database, and its transactions."""

    def __init__(self, url: str, listen_url: str | None = None, create: bool = True) -> None:
        self.url = url
        self._create = create
        self.listen_url = listen_url or url  # a session-mode URL behind a transaction pooler
        self.where = describe_url(url)
        self._pid = os.getpid()
        self._lock = threading.Lock()  # guards creating the pool
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._idle_since: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()
        # One LISTEN connection per channel, each with its own lock: an idle worker and a
        # thread in durq.App.wait, sharing this queue, never take each other's notifications.
        self._listeners: dict[str, Connection] = {}
        self._listen_locks = {READY_CHANNEL: threading.Lock(), FINISHED_CHANNEL: threading.Lock()}
        self._inherited: list[object] = []
        self._closed = False
        self._migrate()  # connect now: a bad URL, server or database fails at connect

    def connect(self, url: str | None = None) -> Connection:
        """A connection of its own (migrations, LISTEN), in autocommit mode."""
        target = url or self.url
        options = dict(_OPTIONS)
        if "connect_timeout" not in conninfo_to_dict(target):
            options["connect_timeout"] = _CONNECT_TIMEOUT
        try:
            conn = psycopg.connect(target, **options)
        except psycopg.Error as exc:
            raise wrapped(describe_url(target), exc, "cannot connect to ") from exc
        try:
            configure(conn)
        except psycopg.Error as exc:
            conn.close()
            raise wrapped(describe_url(target), exc, "cannot configure a connection to ") from exc
        return conn

    def _migrate(self) -> None:
        """Apply the missing migrations, each in one transaction with its version row.

        Concurrent first connects take turns under an advisory lock held by a transaction
        (a session lock would leak behind a pooler in transaction mode, where lock and unlock
        may reach different server connections). A transaction sees the catalog as it was
        when the transaction began, so one that had to wait for the lock might not see the
        tables the other connect just made: it lets go, and the next transaction, which only
        ever *tries* the lock, begins after the other one committed.
        """
        with self.connect() as conn:
            try:
                version = self._schema_version(conn)
                if version == SCHEMA_VERSION:
                    return
                if version == 0 and not self._create:
                    raise NoDatabase(f"no durq database at {self.where}")
                while True:
                    with conn.transaction():
                        lock = conn.execute(
                            "SELECT pg_try_advisory_xact_lock(%s)", (_MIGRATION_LOCK,)
                        )
                        row = lock.fetchone()
                        if row is not None and row[0]:
                            current = self._schema_version(conn)
                            if current == SCHEMA_VERSION:
                                return
                            conn.execute(
                                "CREATE TABLE IF NOT EXISTS durq_schema (version integer "
                                "PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                            )
                            version, script = MIGRATIONS[current]
                            conn.execute(script)
                            conn.execute(
                                "INSERT INTO durq_schema (version) VALUES (%s)", (version,)
                            )
                            continue
                    with conn.transaction():  # another connect migrates: wait for it
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            except psycopg.Error as exc:
                raise wrapped(self.where, exc, "cannot use ") from exc

    def _schema_version(self, conn: Connection) -> int:
        """The schema version; refuses tables durq did not make, or a newer durq's schema."""
        schema, jobs = conn.execute(
            "SELECT to_regclass('durq_schema'), to_regclass('durq_jobs')"
        ).fetchone() or (None, None)
        if schema is None:
            if jobs is not None:
                raise BackendError(
                    f"{self.where} has a durq_jobs table that durq did not make; "
                    "it was left as it is"
                )
            return 0
        row = conn.execute("SELECT coalesce(max(version), 0) FROM durq_schema").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise BackendError(
                f"{self.where} has durq schema version {version}, newer than this durq's "
                f"{SCHEMA_VERSION}: upgrade durq"
            )
        return version

    def _reset_if_forked(self) -> None:
        if self._pid != os.getpid():
            # The parent's pool and LISTEN connections share sockets with the parent: closing
            # them here would end the parent's sessions, so they are kept, unused.
            self._inherited += [self._pool, *self._listeners.values()]
            self._pool = None
            self._listeners = {}
            self._lock = threading.Lock()
            self._listen_locks = {channel: threading.Lock() for channel in self._listen_locks}
            self._pid = os.getpid()

    def _connection_pool(self) -> psycopg_pool.ConnectionPool:
        self._reset_if_forked()
        with self._lock:
            if self._closed:
                raise BackendError(f"{self.where}: the queue is closed")
            if self._pool is None:
                pool = psycopg_pool.ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=_POOL_MAX,
                    kwargs=_OPTIONS,
                    configure=configure,
                    check=self._check,
                    reset=self._returned,
                    timeout=_POOL_WAIT,
                    open=False,
                    name=f"durq-{self._pid}",
                )
                pool.open()
                self._pool = pool
            return self._pool

    def _returned(self, conn: Connection) -> None:
        self._idle_since[conn] = time.monotonic()

    def _check(self, conn: Connection) -> None:
        """Before a connection that sat idle is used, make sure the server still has it (a
        restart or pg_terminate_backend ends idle connections silently); a busy one, used
        moments ago, is not checked, so the hot path pays no extra round trip."""
        if time.monotonic() - self._idle_since.get(conn, 0.0) > _IDLE_CHECK:
            psycopg_pool.ConnectionPool.check_connection(conn)

    @contextmanager
    def transaction(
        self, *, producing: bool = False, pipelined: bool = False
    ) -> Iterator[Connection]:
        """One transaction on a pooled connection; driver errors become ``BackendError``.

        ``producing``: a value the database refuses (out of range, NUL in text) came from
        the caller, so it is ``InvalidJob``. ``pipelined``: statements are sent without
        waiting for the previous one's answer until a result is read, so ``BEGIN``, the lost
        lease rescue and the claim travel together, and ``NOTIFY`` goes with ``COMMIT``: the
        hot paths cost two or three round trips instead of four or five.
        """
        with self._pooled(producing) as conn:
            if pipelined:
                with conn.pipeline(), conn.transaction():
                    yield conn
            else:
                with conn.transaction():
                    yield conn

    def statement(self, sql: str, params: dict[str, Any], *, producing: bool = False) -> Any:
        """One statement as a transaction of its own (pooled connections are autocommit):
        one round trip where ``transaction`` costs two. Its first row, or None; errors as
        ``transaction``'s."""
        with self._pooled(producing) as conn:
            return conn.execute(sql, params).fetchone()

    @contextmanager
    def _pooled(self, producing: bool) -> Iterator[Connection]:
        """A pooled connection, its driver errors turned into durq's (see ``transaction``)."""
        pool = self._connection_pool()
        try:
            with pool.connection() as conn:
                yield conn
        except psycopg.DataError as exc:
            if producing:
                raise InvalidJob(f"the database refused a value: {one_line(exc)}") from exc
            raise wrapped(self.where, exc) from exc
        except psycopg.Error as exc:
            if isinstance(exc, psycopg_pool.PoolTimeout | psycopg_pool.PoolClosed):
                self._replace_pool(pool)
            raise wrapped(self.where, exc) from exc

    def _replace_pool(self, pool: psycopg_pool.ConnectionPool) -> None:
        """Start over with a new pool after one gave no connection in time.

        After a long outage a pool's own reconnection has backed off to tries half a minute
        apart, so the server can be back for that long before the pool notices. A new pool
        tries at once. The old one is closed aside: other threads may still be waiting on it
        (they get ``PoolClosed``, a ``BackendUnavailable``, and try again)."""
        with self._lock:
            if self._pool is not pool:
                return  # another thread replaced it already
            self._pool = None
        threading.Thread(
            target=pool.close, kwargs={"timeout": 1.0}, name="durq-pool-close", daemon=True
        ).start()

    def wait_for_notify(self, channel: str, timeout: float) -> None:
        """Return at a ``NOTIFY`` on ``channel`` or after ``timeout`` seconds; at once when
        the channel's connection is new (a change may have gone unheard before it listened)."""
        self._reset_if_forked()
        with self._listen_locks[channel]:
            if self._closed:
                raise BackendError(f"{self.where}: the queue is closed")
            listener = self._listeners.get(channel)
            if listener is None:
                listener = self.connect(self.listen_url)
                try:
                    listener.execute(f"LISTEN {channel}")
                except psycopg.Error as exc:
                    listener.close()
                    raise wrapped(self.where, exc) from exc
                self._listeners[channel] = listener
                return
            try:
                for _ in listener.notifies(timeout=max(0.0, timeout), stop_after=1):
                    break
                # Take what else has arrived too, so it does not cause a second wake-up.
                for _ in listener.notifies(timeout=0.0):
                    pass
            except psycopg.Error:
                # The server went away: report a possible change; the caller's next look
                # tells it whether the database is usable, and the next wait reconnects.
                self._drop_listener(channel)

    def _drop_listener(self, channel: str) -> None:
        listener = self._listeners.pop(channel, None)
        if listener is not None:
            try:
                listener.close()
            except psycopg.Error:
                pass

    def close(self) -> None:
        # After a fork the locks may have been copied while held by a parent's thread.
        self._reset_if_forked()
        with self._lock:
            self._closed = True
            if self._pid == os.getpid() and self._pool is not None:
                self._pool.close()
            self._pool = None
        for channel, lock in self._listen_locks.items():
            with lock:
                if self._pid == os.getpid():
                    self._drop_listener(channel)
                self._listeners.pop(channel, None)

    def __del__(self) -> None:
        # LISTEN connections are not pooled: close them with the queue that owns them, so a
        # queue dropped without close() leaves no open connection behind to warn about.
        if getattr(self, "_pid", None) != os.getpid():
            return
        for listener in list(getattr(self, "_listeners", {}).values()):
            try:
                listener.close()
            except psycopg.Error:
                pass
