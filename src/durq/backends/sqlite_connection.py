"""The SQLite backend's plumbing: opening the file, migrating it, and its transactions.

- WAL, so readers never block the writer, and a busy timeout, so writers wait their turn.
- Every write is one ``BEGIN IMMEDIATE`` transaction: it takes the write lock up front, so two
  writers never deadlock upgrading a read lock, and ``database is locked`` never escapes.
- One connection per process, opened lazily and opened anew in a forked child; a lock makes
  it safe to share between threads (a worker's runtime writes outcomes while a task, in a
  thread of its own, may enqueue jobs).
- A file that is not SQLite, or not durq's, or of a newer durq, is refused untouched.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

from durq.backends._sql import load_migrations
from durq.errors import BackendError, BackendUnavailable, NoDatabase

MIGRATIONS = load_migrations("sqlite")
SCHEMA_VERSION = len(MIGRATIONS)

_HEADER = b"SQLite format 3\x00"
# Seconds a writer waits for the lock before BackendUnavailable. A worker tries again
# after that (with backoff), so the wait need not be long: a long one would only keep the
# worker's loop from noticing signals while another process sits on the lock.
BUSY_TIMEOUT = 15.0
# The write-ahead log is copied back into the database file (a checkpoint) once it holds
# this many pages: SQLite's default, for every connection until it claims a job (see
# ``claims``). It suits producers: on a new or idle database the WAL starts empty and grows,
# a commit that grows the file syncs its size too, and a longer WAL means more of those
# slower syncs (with 4,000, the first 3,000 enqueues on a new file ran 10-20 % slower).
WAL_CHECKPOINT_PAGES = 1000
# A worker's transactions write the same hot pages (the ends of the indexes, the newest rows)
# again and again, and a checkpoint copies each page once however often it was written, so
# fewer checkpoints copy less: with 4,000 pages (16 MiB) 4-process drains ran 1-10 % faster
# (4 of 5 interleaved pairs, on each of two machines).
WORKER_CHECKPOINT_PAGES = 4000
# With many processes reading and writing all the time those checkpoints may never finish,
# and the WAL file would grow until the disk is full. So now and then a writer makes sure it
# is no bigger than this, truncating it after a checkpoint.
WAL_LIMIT = 32 * 1024 * 1024
_WAL_CHECK_EVERY = 200  # commits between looks at the WAL's size (an os.stat)
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}

T = TypeVar("T")

# Forks of this process so far, counted in the child: a connection made before the last one
# is its parent's. (Asking os.getpid() instead is a system call on every statement.)
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_count_fork)


# What SQLite says when the database is there but cannot be written for now: another
# process held the lock past the busy timeout, the disk is full, or it failed under us.
_TRANSIENT = ("locked", "busy", "full", "disk i/o error", "no space")


def wrapped(path: Path, exc: sqlite3.Error, doing: str = "") -> BackendError:
    """``exc`` as a ``BackendError``: ``BackendUnavailable`` when trying again may work."""
    text = str(exc)
    transient = isinstance(exc, sqlite3.OperationalError) and any(
        word in text.lower() for word in _TRANSIENT
    )
    kind = BackendUnavailable if transient else BackendError
    return kind(f"{doing}{path}: {text}")


def parse_url(url: str) -> tuple[Path, str, bool]:
    """``sqlite:///relative.db`` / ``sqlite:////abs.db`` [``?synchronous=normal``]
    [``&shared=1``] → (path, synchronous pragma value, shared with the application's own
    tables)."""
    rest = url.removeprefix("sqlite://")
    if not rest.startswith("/") or len(rest) < 2:
        raise BackendError(
            f"bad SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////abs.db"
        )
    path_part, _, query = rest[1:].partition("?")
    options = parse_qs(query, keep_blank_values=True)
    unknown = set(options) - {"synchronous", "shared"}
    if unknown:
        raise BackendError(f"bad SQLite URL {url!r}: unknown option {sorted(unknown)[0]!r}")
    sync = options.get("synchronous", ["full"])[-1].lower()
    if sync not in _SYNCHRONOUS:
        raise BackendError(f"bad SQLite URL {url!r}: synchronous must be full or normal")
    shared = options.get("shared", ["0"])[-1].lower()
    if shared not in ("0", "1", "true", "false"):
        raise BackendError(f"bad SQLite URL {url!r}: shared must be 1 or 0")
    return Path(path_part), _SYNCHRONOUS[sync], shared in ("1", "true")


class SQLiteConnection:
    """This process's connection to one durq database file, and its transactions."""

    def __init__(self, url: str, create: bool = True) -> None:
        self.path, self._synchronous, self._shared = parse_url(url)
        self._create = create
        self._forks = _forks
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._inherited: list[sqlite3.Connection] = []
        self._closed = False
        # Commits made through this connection: PRAGMA data_version does not count them, but
        # a thread of this process waiting for a change (durq.App.wait beside an embedded
        # worker) must hear of them too.
        self.commits = 0
        self._claims = False  # the open connection serves a worker (see ``claims``)
        with self.lock:
            self.connection()  # open now: a bad path or file fails at connect

    def connection(self) -> sqlite3.Connection:
        """The open connection (opened on first use); call with ``lock`` held."""
        if self._closed:
            raise BackendError(f"{self.path}: the queue is closed")
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        self._check_file()
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open SQLite database {self.path}: {exc}") from exc
        try:
            self._check_schema(conn)
            retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            # After a checkpoint that resets it, the WAL file is cut back to this size.
            conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            self._claims = False
            # A claim from several queues sorts their candidates in a temporary b-tree; on
            # disk (the default) that costs the claim ten times its time in the first minutes.
            conn.execute("PRAGMA temp_store=MEMORY")
            self._migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise wrapped(self.path, exc, "cannot use SQLite database ") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_file(self) -> None:
        """Refuse, without touching it, a file that is not an SQLite database."""
        try:
            with open(self.path, "rb") as f:
                header = f.read(len(_HEADER))
        except FileNotFoundError:
            if not self._create:
                raise NoDatabase(f"no durq database at {self.path}") from None
            if not self.path.parent.is_dir():
                raise BackendError(
                    f"cannot open SQLite database {self.path}: {self.path.parent} does not exist"
                ) from None
            return
        except OSError as exc:
            raise BackendError(f"cannot open SQLite database {self.path}: {exc}") from exc
        if header and header != _HEADER:
            raise BackendError(f"{self.path} is not an SQLite database; it was left as it is")

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Refuse a database that another program owns, or a newer durq made."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "durq_schema" not in tables and not self._create:
            raise NoDatabase(f"no durq database at {self.path}")
        if not tables:
            return
        if "durq_schema" not in tables and not self._shared:
            raise BackendError(
                f"{self.path} is not a durq database; it was left as it is "
                "(add ?shared=1 to the URL to keep durq's tables in the application's file)"
            )
        if "durq_schema" not in tables:
            if any(name.startswith("durq_") for name in tables):
                raise BackendError(f"{self.path} has durq_ tables that durq did not make")
            return
        (version,) = conn.execute("SELECT coalesce(max(version), 0) FROM durq_schema").fetchone()
        if version > SCHEMA_VERSION:
            raise BackendError(
                f"{self.path} has durq schema version {version}, newer than this durq's "
                f"{SCHEMA_VERSION}: upgrade durq"
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply the missing migrations with their version rows, all in one transaction: a
        database is at one version or the next, never between."""
        retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS durq_schema "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            (current,) = conn.execute(
                "SELECT coalesce(max(version), 0) FROM durq_schema"
            ).fetchone()
            for version, script in MIGRATIONS[current:]:
                for statement in statements(script):
                    conn.execute(statement)
                conn.execute("INSERT INTO durq_schema VALUES (?, ?)", (version, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def reset_if_forked(self) -> None:
        if self._forks != _forks:
            # A forked child must not use its parent's connection; closing it here could
            # disturb the parent's locks, so it is kept, unused, until the child exits.
            self.lock = threading.RLock()
            if self._conn is not None:
                self._inherited.append(self._conn)
            self._conn = None
            self._forks = _forks

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed if the block ends, else rolled back."""
        self.reset_if_forked()
        with self.lock:
            try:
                conn = self.connection()
                begin_immediate(conn)
            except sqlite3.Error as exc:
                raise wrapped(self.path, exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
                self._committed(conn)
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # SQLite already rolled back (disk full, I/O error)
                if isinstance(exc, sqlite3.Error):
                    raise wrapped(self.path, exc) from exc
                raise

    def write_alone(self, sql: str, params: Sequence[Any]) -> None:
        """One statement as a transaction of its own (SQLite's autocommit): what ``write``
        does for a block of one statement, without the two statements BEGIN and COMMIT
        (about a tenth of a lone enqueue's CPU). SQLite takes the write lock (waiting as
        ``BEGIN IMMEDIATE`` does) and commits, or rolls back, when the statement ends."""
        # Written out flat: this is a lone enqueue's whole path to the disk, and each call
        # on it costs twice its warm time after the previous commit's sync.
        if self._forks != _forks:
            self.reset_if_forked()
        with self.lock:
            conn = self._conn or self.connection()
            started = time.monotonic()
            try:
                conn.execute(sql, params)
            except sqlite3.Error as exc:
                self._write_alone_again(conn, sql, params, exc, started)
            self._committed(conn)

    def _write_alone_again(
        self,
        conn: sqlite3.Connection,
        sql: str,
        params: Sequence[Any],
        exc: sqlite3.Error,
        started: float,
    ) -> None:
        """``write_alone``'s statement, first tried at ``started``, after it failed with
        ``exc``: retried while another process holds the lock (SQLITE_BUSY changed nothing)
        and the busy timeout has not passed since ``started``, else raised, wrapped."""
        try:
            if not isinstance(exc, sqlite3.OperationalError) or not _busy(exc):
                raise exc
            if time.monotonic() > started + BUSY_TIMEOUT:
                raise exc  # SQLite's busy handler has waited the whole timeout already
            retry_busy(lambda: conn.execute(sql, params), started)
        except sqlite3.Error as error:
            raise wrapped(self.path, error) from error

    def claims(self, conn: sqlite3.Connection) -> None:
        """Note that this connection claims jobs (a worker's): it checkpoints the WAL less
        often from now on (``WORKER_CHECKPOINT_PAGES``). Call with ``lock`` held."""
        if not self._claims:
            conn.execute(f"PRAGMA wal_autocheckpoint={WORKER_CHECKPOINT_PAGES}")
            self._claims = True

    def _committed(self, conn: sqlite3.Connection) -> None:
        """After each commit: count it (for this process's waiters), and now and then keep
        the WAL small."""
        self.commits += 1
        if self.commits % _WAL_CHECK_EVERY == 0:
            self._keep_wal_small(conn)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several SELECTs (WAL readers never wait for writers)."""
        self.reset_if_forked()
        with self.lock:
            try:
                conn = self.connection()
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise wrapped(self.path, exc) from exc

    def _keep_wal_small(self, conn: sqlite3.Connection) -> None:
        try:
            size = os.path.getsize(f"{self.path}-wal")
        except OSError:
            return
        if size > WAL_LIMIT:
            self.checkpoint(conn)

    def checkpoint(self, conn: sqlite3.Connection | None = None) -> bool:
        """Copy the WAL into the database file and truncate it, giving its disk space back;
        whether that finished (a reader still on an old snapshot can keep it from doing so,
        and it is then simply tried again later). Call outside a transaction."""
        with self.lock:
            try:
                row = (
                    (conn or self.connection())
                    .execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetchone()
                )
            except sqlite3.Error:
                return False  # the disk is full or the lock is held: not now
            return bool(row is not None and row[0] == 0)

    def close(self) -> None:
        with self.lock:
            if self._conn is not None and self._forks == _forks:
                self._conn.close()
            self._conn = None
            self._closed = True


def begin_immediate(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock in steps of at most half a millisecond.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15 … ms between tries: with several worker
    processes taking turns on a lock held about a millisecond at a time, a waiter would sleep
    through many chances and the lock stand idle (a quarter of a 4-process drain's time).
    So the handler is off while this waits and retries itself, sooner."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT
        delay = 0.0001
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))  # jitter: waiters do not march in step
            delay = min(delay * 1.5, 0.0005)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")


def retry_busy(step: Callable[[], T], started: float | None = None) -> T:
    """Run ``step``, retrying while another process holds a lock it needs, until the busy
    timeout has passed since ``started`` (default: now).

    The busy timeout covers most waits; this covers the few SQLite reports at once
    (switching to WAL, a lock held across a checkpoint).
    """
    deadline = (time.monotonic() if started is None else started) + BUSY_TIMEOUT
    delay = 0.001
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` says another connection holds a lock (the statement changed nothing)."""
    return "locked" in str(exc) or "busy" in str(exc)


def statements(script: str) -> Iterator[str]:
    """Split a migration into statements (``executescript`` would commit on its own)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()
