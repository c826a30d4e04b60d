"""The demo ledger: each transfer written in the transaction that completes its job, and
``verify`` catching damage. On both backends."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import app_db
import durq
from durq import demo
from durq.worker.context import CancelFlag, running
from worker_support import Workers, finish, wait_for


@pytest.fixture(autouse=True)
def calm_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURQ_DEMO_FAIL_RATE", "0")
    monkeypatch.setenv("DURQ_DEMO_WORK", "0")


def claimed(queue: durq.JobQueue, payload: object, lease: float = 60.0) -> durq.Job:
    queue.enqueue(payload)
    job = queue.claim("w1", lease=lease)
    assert job is not None
    return job


def apply(queue: durq.JobQueue, job: durq.Job) -> None:
    """Run the demo task on ``job`` as a worker would: with ``job`` current."""
    try:
        with running(job, CancelFlag(), queue):
            demo.apply_transfer(job)
    finally:
        demo.close_ledgers()  # before the test's database is dropped


def entries(url: str) -> list[tuple[object, ...]]:
    return app_db.sql(url, "SELECT job_id, account, amount FROM demo_entries ORDER BY job_id")


def balances(url: str) -> list[tuple[object, ...]]:
    return app_db.sql(url, "SELECT account, balance FROM demo_balances ORDER BY account")


def test_a_transfer_and_its_job_commit_together(queue_url: str, queue: durq.JobQueue) -> None:
    first = claimed(queue, {"account": "alice", "amount": 120})
    second = claimed(queue, {"account": "alice", "amount": -20})

    apply(queue, first)
    apply(queue, second)

    done = queue.get(first.id)
    assert (done.state, done.result) == ("succeeded", {"account": "alice", "balance": 120})
    assert queue.get(second.id).result == {"account": "alice", "balance": 100}
    assert [a.outcome for a in queue.attempts(first.id)] == ["succeeded"]
    assert balances(queue_url) == [("alice", 100)]
    assert sorted(entries(queue_url)) == sorted(
        [(first.id, "alice", 120), (second.id, "alice", -20)]
    )
    assert demo.verify(queue_url) == []


def test_a_failure_before_the_commit_leaves_neither_and_the_retry_applies_it_once(
    queue_url: str, queue: durq.JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = claimed(queue, {"account": "bob", "amount": 5})
    monkeypatch.setenv("DURQ_DEMO_FAIL_RATE", "1")
    with pytest.raises(RuntimeError, match="simulated failure before the commit"):
        apply(queue, job)
    assert queue.get(job.id).state == "running"  # the worker would now fail the attempt
    assert entries(queue_url) == [] and balances(queue_url) == []

    monkeypatch.setenv("DURQ_DEMO_FAIL_RATE", "0")
    apply(queue, job)
    assert queue.get(job.id).state == "succeeded"
    assert entries(queue_url) == [(job.id, "bob", 5)]
    assert demo.verify(queue_url) == []


def test_a_stolen_lease_raises_lease_lost_and_the_transfer_is_rolled_back(
    queue_url: str, queue: durq.JobQueue
) -> None:
    stale = claimed(queue, {"account": "carol", "amount": 9}, lease=0.2)
    time.sleep(0.4)
    rescued = queue.claim("w2")  # the lease ran out: another worker takes the job
    assert rescued is not None and rescued.id == stale.id

    with pytest.raises(durq.LeaseLost):
        apply(queue, stale)
    assert entries(queue_url) == [] and balances(queue_url) == []
    assert queue.get(stale.id).state == "running"

    apply(queue, rescued)
    assert entries(queue_url) == [(stale.id, "carol", 9)]
    assert demo.verify(queue_url) == []


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
    queue_url: str, queue: durq.JobQueue, payload: object
) -> None:
    apply(queue, claimed(queue, {"account": "carol", "amount": 9}))
    before = entries(queue_url), balances(queue_url)

    job = claimed(queue, payload)
    with pytest.raises(durq.Unprocessable):
        apply(queue, job)

    assert (entries(queue_url), balances(queue_url)) == before
    assert queue.get(job.id).state == "running"


def test_verify_catches_a_damaged_ledger(queue_url: str, queue: durq.JobQueue) -> None:
    job = claimed(queue, {"account": "alice", "amount": 50})
    apply(queue, job)
    apply(queue, claimed(queue, {"account": "bob", "amount": 7}))
    unrun = queue.enqueue({"account": "erin", "amount": 1})
    assert demo.verify(queue_url) == []

    app_db.sql(queue_url, "UPDATE demo_balances SET balance = balance + 1 WHERE account = 'bob'")
    app_db.sql(queue_url, "INSERT INTO demo_entries VALUES (?, 'alice', 50)", (job.id,))
    app_db.sql(queue_url, "INSERT INTO demo_entries VALUES (?, 'erin', 1)", (unrun.id,))

    assert demo.verify(queue_url) == [
        f"job {job.id} succeeded with 2 ledger entries, not one",
        f"job {unrun.id} has a ledger entry but did not succeed",
        "account alice: balance 50 but its transfers sum to 100",
        "account bob: balance 8 but its transfers sum to 7",
        "account erin: no balance but its transfers sum to 1",
    ]


def test_verify_reports_a_missing_ledger_and_an_unreadable_file(
    queue_url: str, queue: durq.JobQueue, tmp_path: Path
) -> None:
    assert demo.verify(queue_url) == [
        "no ledger yet: no transfer has been applied (is a worker running?)"
    ]
    missing = tmp_path / "nothing.db"
    [problem] = demo.verify(f"sqlite:///{missing}")
    assert problem.startswith(f"cannot read the ledger in sqlite:///{missing}: ")
    assert not missing.exists()
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a database at all, just text " * 100)
    [problem] = demo.verify(f"sqlite:///{garbage}")
    assert problem.startswith(f"cannot read the ledger in sqlite:///{garbage}: ")


def test_transfer_payloads_are_transfers() -> None:
    rng = random.Random(7)
    for _ in range(200):
        payload = demo.transfer_payload(rng)
        assert set(payload) == {"account", "amount"}
        assert payload["account"] in demo.ACCOUNTS
        assert isinstance(payload["amount"], int) and payload["amount"] != 0


@pytest.mark.slow
def test_workers_apply_the_demo_transfers_and_the_ledger_verifies(
    queue_url: str, queue: durq.JobQueue, workers: Workers
) -> None:
    rng = random.Random(1)
    fast_retry = durq.RetryPolicy(base=0.05, cap=0.2)
    # A fifth of the attempts fail: with 5 attempts, one job in 3,125 would fail them all
    # (with 40 jobs on two backends, one run in 40 would wait for it in vain); with 12, one
    # in 244 million.
    payloads = [demo.transfer_payload(rng) for _ in range(40)]
    jobs = queue.enqueue_many(payloads, retry=fast_retry, max_attempts=12)
    workers.env.update(DURQ_DEMO_FAIL_RATE="0.2", DURQ_DEMO_WORK="0")
    two = [workers.start("--handler", "durq.demo:apply_transfer") for _ in range(2)]

    wait_for(lambda: all(queue.get(j.id).state == "succeeded" for j in jobs), "every transfer", 60)
    for proc in two:
        proc.send_signal(signal.SIGTERM)
        code, log = finish(proc)
        assert code == 0, log
    assert sum(queue.get(j.id).attempts > 1 for j in jobs) > 0  # failures were retried
    verify = subprocess.run(
        [sys.executable, "-m", "durq", "--db", queue_url, "demo", "verify"],
        env=workers.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("ledger OK: ")
    assert len(entries(queue_url)) == 40
