"""The demo workload: money transfers applied exactly once, in the queue's own database.

The producer submits ``{"account": "alice", "amount": -120}``; workers run
``durq.demo:apply_transfer`` on each. The ledger (``demo_entries``, ``demo_balances``)
stands for the application's own data and lives in the queue's database, so one transaction
of the application's own connection writes the transfer *and* completes its job
(``durq.complete_in``): both happen, or neither. A job whose lease was taken away gets
``LeaseLost`` before anything is written and rolls back; a worker killed before the commit
leaves neither, and the job runs again. So a transfer is applied once per succeeded job:
exactly-once effects, not just at-least-once runs.

``verify`` checks that invariant from the database: every succeeded transfer job has exactly
one ledger entry, no entry lacks a succeeded job, and every balance is the sum of its
account's entries.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from contextlib import closing
from typing import Any

from durq.backends import DEFAULT_URL
from durq.errors import DurqError, Unprocessable
from durq.job import Job
from durq.worker import complete_in, current_queue

ACCOUNTS = ("alice", "bob", "carol", "dave", "erin", "frank")
DEFAULT_FAIL_RATE = 0.02  # share of attempts that fail on purpose, before committing
DEFAULT_WORK = 0.05  # seconds of pretend work per transfer, at most

_SCHEMA = (
    # Not unique by job on purpose: a transfer applied twice would show up in verify().
    "CREATE TABLE IF NOT EXISTS demo_entries (job_id TEXT NOT NULL, account TEXT NOT NULL, "
    "amount BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS demo_balances (account TEXT PRIMARY KEY, balance BIGINT NOT NULL)",
)
_ENTRY = "INSERT INTO demo_entries (job_id, account, amount) VALUES ({0}, {0}, {0})"
_BALANCE = (
    "INSERT INTO demo_balances (account, balance) VALUES ({0}, {0}) ON CONFLICT (account) "
    "DO UPDATE SET balance = demo_balances.balance + excluded.balance RETURNING balance"
)


def transfer_payload(rng: random.Random) -> dict[str, Any]:
    """A random transfer for the producer: a credit or a debit of 1..500 on one account."""
    return {"account": rng.choice(ACCOUNTS), "amount": rng.choice((-1, 1)) * rng.randint(1, 500)}


def _transfer(payload: Any) -> tuple[str, int]:
    """The account and amount of a transfer payload; ``Unprocessable`` if it is not one."""
    if not isinstance(payload, dict) or set(payload) != {"account", "amount"}:
        raise Unprocessable(f'a transfer is {{"account": str, "amount": int}}, not {payload!r}')
    account, amount = payload["account"], payload["amount"]
    if not isinstance(account, str) or not 1 <= len(account) <= 64:
        raise Unprocessable(f"account must be a name of 1 to 64 characters, not {account!r}")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise Unprocessable(f"amount must be a whole number, not {amount!r}")
    return account, amount


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise RuntimeError(f"${name} must be a number, not {raw!r}") from None


class Ledger:
    """The application's own connection to the queue's database, one per thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.lower().startswith("sqlite:")
        self.mark = "?" if self.sqlite else "%s"
        self._local = threading.local()
        self._opened: list[Any] = []  # every thread's, for close()
        self._lock = threading.Lock()

    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(conn, "closed", False):
            conn = None  # psycopg's, lost with its server: the next transfer opens another
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
            with self.transaction(conn):
                for statement in _SCHEMA:
                    conn.execute(statement)
        return conn

    def _connect(self, read_only: bool = False) -> Any:
        if self.sqlite:
            from durq.backends.sqlite_connection import parse_url

            path = parse_url(self.url)[0]
            if read_only:  # verify() must not create a file where there is none
                uri = f"{path.resolve().as_uri()}?mode=ro"
                return sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
            # BEGIN IMMEDIATE below takes the write lock up front, as durq's own writes do.
            # Used by one thread, but closed by close() from any.
            return sqlite3.connect(
                path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def close(self) -> None:
        """Close every thread's connection (the next transfer opens another)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

    def transaction(self, conn: Any) -> Any:
        return _SQLiteTransaction(conn) if self.sqlite else conn.transaction()

    def apply(self, job: Job, account: str, amount: int, fail: bool) -> int:
        """Write the transfer and complete its job, in one transaction; the new balance."""
        conn = self.connection()
        with self.transaction(conn):
            conn.execute(_ENTRY.format(self.mark), (job.id, account, amount))
            (balance,) = conn.execute(_BALANCE.format(self.mark), (account, amount)).fetchone()
            if fail:
                raise RuntimeError("simulated failure before the commit (DURQ_DEMO_FAIL_RATE)")
            complete_in(conn, {"account": account, "balance": balance})
        return int(balance)


class _SQLiteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


_ledgers: dict[str, Ledger] = {}


def ledger(url: str | None = None) -> Ledger:
    """The ledger of the queue at ``url`` (default: the worker's queue, else $DURQ_URL)."""
    if url is None:
        queue = current_queue()
        url = queue.url if queue is not None else os.environ.get("DURQ_URL") or DEFAULT_URL
    if url not in _ledgers:
        _ledgers[url] = Ledger(url)
    return _ledgers[url]


def close_ledgers() -> None:
    """Close the connections the ledgers of this process opened."""
    while _ledgers:
        _ledgers.popitem()[1].close()


def apply_transfer(job: Job) -> None:
    """The demo handler: apply ``job.payload``'s transfer and complete the job, atomically.

    A payload that is not a transfer is ``Unprocessable``. To make the demo lively it
    pretends to work for up to ``$DURQ_DEMO_WORK`` seconds (default 0.05) and fails a
    ``$DURQ_DEMO_FAIL_RATE`` share of attempts (default 0.02) just before committing, so the
    transfer is rolled back with it and the retry applies it once.
    """
    account, amount = _transfer(job.payload)
    work = _env_float("DURQ_DEMO_WORK", DEFAULT_WORK)
    if work > 0:
        time.sleep(random.uniform(min(0.01, work), work))
    fail = random.random() < _env_float("DURQ_DEMO_FAIL_RATE", DEFAULT_FAIL_RATE)
    # A LeaseLost from complete_in rolls the transfer back with it: the job is another
    # attempt's now, and that attempt applies it.
    ledger().apply(job, account, amount, fail)


def verify(url: str) -> list[str]:
    """The ledger's discrepancies, one line each; ``[]`` means it holds.

    Every succeeded transfer job has exactly one entry, every entry belongs to a succeeded
    job, and every balance equals the sum of its account's entries. Read in one snapshot.
    """
    book = Ledger(url)
    try:
        conn = book._connect(read_only=True)
    except sqlite3.Error as exc:
        return [f"cannot read the ledger in {url}: {exc}"]
    with closing(conn):
        try:
            return _discrepancies(book, conn)
        except (sqlite3.Error, DurqError) as exc:
            return [f"cannot read the ledger in {url}: {exc}"]
        except Exception as exc:  # psycopg's errors, without importing it here
            return [f"cannot read the ledger in {url}: {' '.join(str(exc).split())}"]


def _discrepancies(book: Ledger, conn: Any) -> list[str]:
    tables = {"demo_entries", "demo_balances"}
    if book.sqlite:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        conn.execute("BEGIN")  # one snapshot for every check, while workers go on writing
    else:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        }
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    if not tables <= names:
        return ["no ledger yet: no transfer has been applied (is a worker running?)"]
    found = []
    transfers = (
        "SELECT id FROM durq_jobs WHERE state = 'succeeded' AND task IS NULL "
        "AND payload IS NOT NULL"
    )
    for job_id, n in conn.execute(
        f"SELECT j.id, count(e.job_id) FROM ({transfers}) AS j "
        "LEFT JOIN demo_entries AS e ON e.job_id = j.id GROUP BY j.id HAVING count(e.job_id) <> 1"
    ):
        found.append(f"job {job_id} succeeded with {n} ledger entries, not one")
    for (job_id,) in conn.execute(
        "SELECT DISTINCT e.job_id FROM demo_entries AS e WHERE NOT EXISTS "
        "(SELECT 1 FROM durq_jobs AS j WHERE j.id = e.job_id AND j.state = 'succeeded')"
    ):
        found.append(f"job {job_id} has a ledger entry but did not succeed")
    sums = dict(conn.execute("SELECT account, sum(amount) FROM demo_entries GROUP BY account"))
    balances = dict(conn.execute("SELECT account, balance FROM demo_balances"))
    for account in sorted(sums.keys() | balances.keys()):
        expected, actual = sums.get(account, 0), balances.get(account)
        if actual is None:
            found.append(f"account {account}: no balance but its transfers sum to {expected}")
        elif actual != expected:
            found.append(f"account {account}: balance {actual} but its transfers sum to {expected}")
    conn.execute("COMMIT" if book.sqlite else "ROLLBACK")
    return found
