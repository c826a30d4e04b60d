"""The demo ledger: transfers applied exactly once per job, and ``verify`` catching damage."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

import durq
from durq import demo


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ledger.db"
    monkeypatch.setenv("DURQ_DEMO_DB", str(path))
    monkeypatch.setenv("DURQ_DEMO_FAIL_RATE", "0")
    monkeypatch.setenv("DURQ_DEMO_WORK", "0")
    return path


def claimed(queue: durq.JobQueue, payload: object) -> durq.Job:
    queue.enqueue(payload)
    job = queue.claim("w1")
    assert job is not None
    return job


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def test_a_transfer_applied_twice_counts_once(queue: durq.JobQueue, ledger: Path) -> None:
    job = claimed(queue, {"account": "alice", "amount": 120})
    other = claimed(queue, {"account": "alice", "amount": -20})

    assert demo.apply_transfer(job) == {"applied": True, "account": "alice", "balance": 120}
    assert demo.apply_transfer(job) == {"applied": False}
    assert demo.apply_transfer(other) == {"applied": True, "account": "alice", "balance": 100}

    assert rows(ledger, "SELECT account, balance FROM balances") == [("alice", 100)]
    assert rows(ledger, "SELECT job_id, amount FROM entries ORDER BY seq") == [
        (job.id, 120),
        (other.id, -20),
    ]
    assert demo.verify(ledger) == []


def test_a_failure_after_applying_leaves_the_retry_nothing_to_do(
    queue: durq.JobQueue, ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = claimed(queue, {"account": "bob", "amount": 5})
    monkeypatch.setenv("DURQ_DEMO_FAIL_RATE", "1")
    with pytest.raises(RuntimeError, match="simulated failure after applying"):
        demo.apply_transfer(job)
    monkeypatch.setenv("DURQ_DEMO_FAIL_RATE", "0")

    assert demo.apply_transfer(job) == {"applied": False}
    assert rows(ledger, "SELECT account, balance FROM balances") == [("bob", 5)]
    assert demo.verify(ledger) == []


@pytest.mark.parametrize(
    "payload",
    [
        {"account": "alice"},
        {"account": "alice", "amount": 1.5},
        {"account": "alice", "amount": True},
        {"account": "", "amount": 1},
        {"account": 7, "amount": 1},
        {"account": "alice", "amount": 1, "note": "extra"},
        [1, 2],
        None,
    ],
)
def test_a_payload_that_is_not_a_transfer_is_unprocessable_and_changes_nothing(
    queue: durq.JobQueue, ledger: Path, payload: object
) -> None:
    demo.apply_transfer(claimed(queue, {"account": "carol", "amount": 9}))
    before = rows(ledger, "SELECT * FROM entries"), rows(ledger, "SELECT * FROM balances")

    with pytest.raises(durq.Unprocessable):
        demo.apply_transfer(claimed(queue, payload))

    assert (rows(ledger, "SELECT * FROM entries"), rows(ledger, "SELECT * FROM balances")) == before


def test_verify_catches_a_tampered_ledger(queue: durq.JobQueue, ledger: Path) -> None:
    job = claimed(queue, {"account": "alice", "amount": 50})
    demo.apply_transfer(job)
    demo.apply_transfer(claimed(queue, {"account": "bob", "amount": 7}))
    assert demo.verify(ledger) == []

    with closing(sqlite3.connect(ledger)) as conn, conn:
        conn.execute("UPDATE balances SET balance = balance + 1 WHERE account = 'bob'")
        conn.execute(
            "INSERT INTO entries (job_id, account, amount) VALUES (?, 'alice', 50)", (job.id,)
        )
        conn.execute("INSERT INTO applied VALUES ('ghost', 0)")

    assert demo.verify(ledger) == [
        f"job {job.id} was applied 2 times",
        "job ghost is recorded as applied but has no entry",
        "account alice: balance 50 but its applied transfers sum to 100",
        "account bob: balance 8 but its applied transfers sum to 7",
    ]


def test_verify_reports_a_missing_or_foreign_ledger_without_creating_one(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.db"
    assert demo.verify(missing) == [
        f"no ledger at {missing} (has a worker applied any transfer yet?)"
    ]
    assert not missing.exists()

    foreign = tmp_path / "other.db"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert demo.verify(foreign) == ["not a demo ledger: no table applied, balances, entries"]

    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a database at all, just text " * 100)
    [problem] = demo.verify(garbage)
    assert problem.startswith(f"cannot read the ledger {garbage}: ")


def test_the_ledger_lives_beside_the_queue_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DURQ_DEMO_DB", raising=False)
    monkeypatch.delenv("DURQ_URL", raising=False)
    assert demo.ledger_path("sqlite:///var/durq.db") == Path("var/ledger.db")
    assert demo.ledger_path(f"sqlite:///{tmp_path}/q.db") == tmp_path / "ledger.db"
    assert demo.ledger_path("postgresql://db.example/durq") == Path("ledger.db")
    assert demo.ledger_path() == Path("ledger.db")  # beside the default sqlite:///durq.db
    monkeypatch.setenv("DURQ_URL", "sqlite:///data/jobs.db")
    assert demo.ledger_path() == Path("data/ledger.db")
    monkeypatch.setenv("DURQ_DEMO_DB", str(tmp_path / "mine.db"))
    assert demo.ledger_path("sqlite:///var/durq.db") == tmp_path / "mine.db"


def test_transfer_payloads_are_transfers() -> None:
    rng = random.Random(7)
    for _ in range(200):
        payload = demo.transfer_payload(rng)
        assert set(payload) == {"account", "amount"}
        assert payload["account"] in demo.ACCOUNTS
        assert isinstance(payload["amount"], int) and payload["amount"] != 0


@pytest.mark.slow
def test_workers_apply_the_demo_transfers_and_the_ledger_verifies(
    queue_url: str, python_env: dict[str, str], tmp_path: Path
) -> None:
    # The default ledger: beside an SQLite queue's file (tmp_path/durq.db), else (PostgreSQL)
    # in the working directory, which is tmp_path for every process here.
    env = dict(python_env, DURQ_DEMO_FAIL_RATE="0", DURQ_DEMO_WORK="0")
    env.pop("DURQ_DEMO_DB", None)
    rng = random.Random(1)
    with durq.connect(queue_url) as queue:
        jobs = queue.enqueue_many([demo.transfer_payload(rng) for _ in range(20)])
    durq_cmd = [sys.executable, "-m", "durq", "--db", queue_url]
    worker = [*durq_cmd, "worker", "--handler", "durq.demo:apply_transfer", "--burst"]
    two = [
        subprocess.Popen(worker, env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        for _ in range(2)
    ]
    for proc in two:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err

    with durq.connect(queue_url) as queue:
        assert {queue.get(j.id).state for j in jobs} == {"succeeded"}
    verify = subprocess.run(
        [*durq_cmd, "demo", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert verify.returncode == 0, verify.stderr
    ledger = tmp_path / "ledger.db"  # where the workers chose to put it
    assert demo.verify(ledger) == []
    assert len(rows(ledger, "SELECT * FROM entries")) == 20
