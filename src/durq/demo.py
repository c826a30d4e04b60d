"""The demo workload: money transfers applied exactly once to a ledger, under at-least-once jobs.

The producer submits ``{"account": "alice", "amount": -120}``; workers run
``durq.demo:apply_transfer`` on each. The ledger is a separate SQLite database, standing for
the application's own data (so plain ``sqlite3`` here, not the queue's API). A job may run
more than once (its worker died after applying, a retry after a failure), so the handler
makes its effect exactly-once by keying it on ``job.id``: one transaction records the id as
applied *and* moves the money, and a job whose id is already recorded changes nothing.

``verify`` checks the invariant the whole system must keep: every balance equals the sum of
its account's journal entries, and no job has more than one entry.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from durq.backends import DEFAULT_URL
from durq.errors import Unprocessable
from durq.job import Job
from durq.worker import current_queue

ACCOUNTS = ("alice", "bob", "carol", "dave", "erin", "frank")
LEDGER_NAME = "ledger.db"
DEFAULT_FAIL_RATE = 0.02  # share of attempts that fail on purpose, after applying
DEFAULT_WORK = 0.05  # seconds of pretend work per transfer, at most

_SCHEMA = (
    # The idempotency record: a job id here has been applied, whatever ran it how often.
    "CREATE TABLE IF NOT EXISTS applied (job_id TEXT PRIMARY KEY, applied_at REAL NOT NULL)",
    # The journal: one row per applied transfer. Not unique by job on purpose, so that a
    # handler that forgot the idempotency record would show up in verify().
    "CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL, "
    "account TEXT NOT NULL, amount INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)",
)


def ledger_path(queue_url: str | None = None) -> Path:
    """Where the ledger lives: ``$DURQ_DEMO_DB``, else ``ledger.db`` beside the queue's file.

    Without ``queue_url`` it is the queue of the worker running in this process, else
    ``$DURQ_URL`` (or durq's default). A queue that is not a file (PostgreSQL) puts the
    ledger in the current directory.
    """
    override = os.environ.get("DURQ_DEMO_DB")
    if override:
        return Path(override)
    if queue_url is None:
        # An SQLite queue knows its file; a worker's handler gets no URL, only the queue.
        queue_file = getattr(current_queue(), "path", None)
        if isinstance(queue_file, Path):
            return queue_file.with_name(LEDGER_NAME)
        queue_url = os.environ.get("DURQ_URL") or DEFAULT_URL
    if queue_url.lower().startswith("sqlite:"):
        from durq.backends.sqlite import parse_url

        return parse_url(queue_url)[0].with_name(LEDGER_NAME)
    return Path(LEDGER_NAME)


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


def _open_ledger(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def apply_transfer(job: Job) -> dict[str, Any]:
    """The demo handler: apply ``job.payload``'s transfer to the ledger, at most once per job.

    Returns ``{"applied": True, "account": …, "balance": …}``, or ``{"applied": False}`` when
    this job was applied before. A payload that is not a transfer is ``Unprocessable``. To make
    the demo lively it pretends to work for up to ``$DURQ_DEMO_WORK`` seconds (default 0.05)
    and fails a ``$DURQ_DEMO_FAIL_RATE`` share of attempts (default 0.02) *after* applying,
    as a worker that crashed before reporting would; the retry then changes nothing.
    """
    account, amount = _transfer(job.payload)
    work = _env_float("DURQ_DEMO_WORK", DEFAULT_WORK)
    if work > 0:
        time.sleep(random.uniform(min(0.01, work), work))
    balance: int | None = None
    with closing(_open_ledger(ledger_path())) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            fresh = conn.execute(
                "INSERT OR IGNORE INTO applied (job_id, applied_at) VALUES (?, ?)",
                (job.id, time.time()),
            ).rowcount
            if fresh:
                conn.execute(
                    "INSERT INTO entries (job_id, account, amount) VALUES (?, ?, ?)",
                    (job.id, account, amount),
                )
                conn.execute(
                    "INSERT INTO balances (account, balance) VALUES (?, ?) "
                    "ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance",
                    (account, amount),
                )
                (balance,) = conn.execute(
                    "SELECT balance FROM balances WHERE account = ?", (account,)
                ).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    if random.random() < _env_float("DURQ_DEMO_FAIL_RATE", DEFAULT_FAIL_RATE):
        raise RuntimeError("simulated failure after applying the transfer (DURQ_DEMO_FAIL_RATE)")
    if not fresh:
        return {"applied": False}
    return {"applied": True, "account": account, "balance": balance}


def verify(ledger_path: str | Path) -> list[str]:
    """The ledger's discrepancies, one line each; ``[]`` means it is consistent.

    Checks that no job has more than one journal entry, that the applied jobs and the
    journal agree, and that every balance equals the sum of its account's entries. Opens the
    ledger read-only: a missing file is reported, not created.
    """
    path = Path(ledger_path)
    if not path.is_file():
        return [f"no ledger at {path} (has a worker applied any transfer yet?)"]
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            return _discrepancies(conn)
    except sqlite3.Error as exc:
        return [f"cannot read the ledger {path}: {exc}"]


def _discrepancies(conn: sqlite3.Connection) -> list[str]:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = {"applied", "entries", "balances"} - tables
    if missing:
        return [f"not a demo ledger: no table {', '.join(sorted(missing))}"]
    found = []
    conn.execute("BEGIN")  # one snapshot for every check, while workers go on writing
    for job_id, n in conn.execute(
        "SELECT job_id, count(*) FROM entries GROUP BY job_id HAVING count(*) > 1"
    ):
        found.append(f"job {job_id} was applied {n} times")
    for (job_id,) in conn.execute(
        "SELECT DISTINCT job_id FROM entries WHERE job_id NOT IN (SELECT job_id FROM applied)"
    ):
        found.append(f"job {job_id} has an entry but is not recorded as applied")
    for (job_id,) in conn.execute(
        "SELECT job_id FROM applied WHERE job_id NOT IN (SELECT job_id FROM entries)"
    ):
        found.append(f"job {job_id} is recorded as applied but has no entry")
    sums = dict(conn.execute("SELECT account, sum(amount) FROM entries GROUP BY account"))
    balances = dict(conn.execute("SELECT account, balance FROM balances"))
    for account in sorted(sums.keys() | balances.keys()):
        expected, actual = sums.get(account, 0), balances.get(account)
        if actual != expected:
            found.append(
                f"account {account}: balance {actual} but its applied transfers sum to {expected}"
            )
    conn.execute("COMMIT")
    return found
