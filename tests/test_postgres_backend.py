"""What only the PostgreSQL backend has: the optional driver, the server's schema, the pool
across fork, LISTEN/NOTIFY. The shared behaviour is in tests/contract/, run on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import durq

pytestmark = pytest.mark.postgres

NEEDS_EXTRA = "the PostgreSQL backend needs the 'postgres' extra: pip install 'durq[postgres]'"


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    import pg_support

    return pg_support.fresh_database(request)


@pytest.fixture
def empty_pg_url(request: pytest.FixtureRequest) -> str:
    import pg_support

    return pg_support.empty_database(request)


def sql(
    url: str, statement: str, params: dict[str, object] | None = None
) -> list[tuple[object, ...]]:
    import pg_support

    return pg_support.execute(url, statement, params)


def run_python(
    code: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_missing_driver_names_the_extra(python_env: dict[str, str]) -> None:
    # No server needed: the import fails before any connection is tried.
    done = run_python(
        """
        import sys
        sys.modules["psycopg"] = None  # as if psycopg were not installed
        import durq
        try:
            durq.connect("postgresql://nobody@127.0.0.1:1/none")
        except durq.BackendError as exc:
            print(exc)
            print(type(exc.__cause__).__name__)
        """,
        python_env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [NEEDS_EXTRA, "ModuleNotFoundError"]


def test_unreachable_server_is_a_one_line_backend_error() -> None:
    with pytest.raises(durq.BackendError, match="cannot connect to PostgreSQL at") as info:
        durq.connect("postgresql://postgres:secret@127.0.0.1:1/durq")
    assert "\n" not in str(info.value)
    assert "secret" not in str(info.value)


def test_both_url_schemes_open_the_same_database(pg_url: str) -> None:
    with durq.connect(pg_url) as q:
        job = q.enqueue({"n": 1})
    with durq.connect(pg_url.replace("postgresql://", "postgres://", 1)) as q:
        assert q.get(job.id) == job


def test_schema_version_matches_the_last_migration(pg_url: str) -> None:
    from durq.backends import postgres_connection as postgres

    assert postgres.MIGRATIONS[-1][0] == postgres.SCHEMA_VERSION
    rows = sql(pg_url, "SELECT version FROM durq_schema ORDER BY version")
    assert rows == [(v,) for v, _ in postgres.MIGRATIONS]


def test_a_newer_schema_is_refused_and_left_alone(pg_url: str) -> None:
    with durq.connect(pg_url) as q:
        job = q.enqueue({"n": 1})
    sql(pg_url, "INSERT INTO durq_schema (version) VALUES (99)")
    with pytest.raises(durq.BackendError, match="schema version 99, newer than this durq's"):
        durq.connect(pg_url)
    assert sql(pg_url, "SELECT max(version) FROM durq_schema") == [(99,)]
    assert sql(pg_url, "SELECT id, state FROM durq_jobs") == [(job.id, "queued")]


def test_a_foreign_durq_jobs_table_is_refused(empty_pg_url: str) -> None:
    sql(empty_pg_url, "CREATE TABLE durq_jobs (x int)")
    with pytest.raises(durq.BackendError, match="durq did not make"):
        durq.connect(empty_pg_url)
    assert sql(empty_pg_url, "SELECT to_regclass('durq_schema')") == [(None,)]


def test_other_tables_are_no_obstacle(empty_pg_url: str) -> None:
    # Unlike an SQLite file, a PostgreSQL database is often shared with the application.
    sql(empty_pg_url, "CREATE TABLE orders (id int)")
    with durq.connect(empty_pg_url) as q:
        q.enqueue({"n": 1})
    assert sql(empty_pg_url, "SELECT count(*) FROM orders") == [(0,)]


@pytest.mark.slow
def test_concurrent_first_connects_migrate_once(
    empty_pg_url: str, python_env: dict[str, str]
) -> None:
    code = f"""
        import durq
        with durq.connect({empty_pg_url!r}) as q:
            q.enqueue({{"n": 1}})
        """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=python_env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    # Wait for every process before judging any, so none is left running with open pipes.
    outcomes = [(p.communicate(timeout=120)[1], p.returncode) for p in procs]
    for err, returncode in outcomes:
        assert returncode == 0, err
    from durq.backends.postgres_connection import MIGRATIONS

    versions = sql(empty_pg_url, "SELECT version FROM durq_schema ORDER BY version")
    assert versions == [(v,) for v, _ in MIGRATIONS]  # each migration once
    assert sql(empty_pg_url, "SELECT count(*) FROM durq_jobs") == [(6,)]


DRAIN = """
    import sys, time
    from pathlib import Path
    import durq
    url, worker, out, gate = sys.argv[1:]
    Path(gate, worker + ".ready").touch()
    while not Path(gate, "go").exists():
        time.sleep(0.01)
    done = []
    with durq.connect(url) as q:
        job = q.claim(worker, lease=120)
        while job is not None:
            done.append(job.id)
            _, job = q.complete_and_claim(job, worker, worker_id=worker, lease=120)
    Path(out).write_text("\\n".join(done))
"""


@pytest.mark.slow
def test_sixteen_processes_complete_each_job_exactly_once(
    pg_url: str, python_env: dict[str, str], tmp_path: Path
) -> None:
    with durq.connect(pg_url) as q:
        jobs = q.enqueue_many([{"n": n} for n in range(2000)])
    gate = tmp_path / "gate"
    gate.mkdir()
    outs = [tmp_path / f"done-{i}.txt" for i in range(16)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(DRAIN), pg_url, f"w{i}", str(out), str(gate)],
            env=python_env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, out in enumerate(outs)
    ]
    deadline = time.monotonic() + 120
    while len(list(gate.glob("*.ready"))) < len(procs):
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        assert time.monotonic() < deadline, "the workers never got ready"
        time.sleep(0.02)
    (gate / "go").touch()
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err

    reported = Counter(line for out in outs for line in out.read_text().split())
    assert reported.keys() == {job.id for job in jobs}
    assert set(reported.values()) == {1}, "a job was handed to two workers"
    assert sum(1 for out in outs if out.read_text()) >= 2, "only one process did any work"
    with durq.connect(pg_url) as q:
        counts = q.stats()["queues"]["default"]
        assert counts["succeeded"] == 2000
        assert counts["queued"] == counts["running"] == 0
        results = {job.id: q.get(job.id).result for job in jobs[:50]}
    by_worker = {
        job_id: f"w{i}" for i, out in enumerate(outs) for job_id in out.read_text().split()
    }
    assert results == {job_id: by_worker[job_id] for job_id in results}


def test_wait_for_change_wakes_on_another_connections_enqueue(pg_url: str) -> None:
    with durq.connect(pg_url) as waiter, durq.connect(pg_url) as producer:
        waiter.wait_for_change(0)  # sets up LISTEN; returns at once (a change may be missed)

        # Nothing happens: it waits its whole timeout.
        started = time.monotonic()
        waiter.wait_for_change(0.3)
        assert time.monotonic() - started >= 0.3

        # Another connection enqueues while it waits: it returns long before its timeout.
        timer = threading.Timer(0.2, producer.enqueue, args=({"n": 1},))
        timer.start()
        started = time.monotonic()
        waiter.wait_for_change(30)
        waited = time.monotonic() - started
        timer.join()
        assert waited < 25, "wait_for_change ran out its timeout: no notification arrived"
        assert waiter.claim("w1") is not None


def test_a_failed_retry_and_a_release_notify_too(pg_url: str) -> None:
    with durq.connect(pg_url) as waiter, durq.connect(pg_url) as worker:
        worker.enqueue({"n": 1})
        waiter.wait_for_change(0)
        job = worker.claim("w1")
        assert job is not None
        waiter.wait_for_change(0)  # take the enqueue's notification, if it is still there
        for finish in (lambda j: worker.fail(j, "boom", retry=True), worker.release):
            started = time.monotonic()
            waiter.wait_for_change(0.2)  # nothing pending: it waits its whole timeout
            assert time.monotonic() - started >= 0.2
            timer = threading.Timer(0.2, finish, args=(job,))
            timer.start()
            started = time.monotonic()
            waiter.wait_for_change(30)
            timer.join()
            assert time.monotonic() - started < 25
            sql(pg_url, "UPDATE durq_jobs SET run_at = now()")  # skip the retry backoff
            job = worker.claim("w1")
            assert job is not None


def test_a_job_rescued_into_unprocessable_wakes_the_finished_waiters(pg_url: str) -> None:
    import psycopg

    with durq.connect(pg_url) as q, psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute("LISTEN durq_finished")
        last = q.enqueue({"n": 1}, max_attempts=1)
        lost = q.claim("w-lost", lease=0.2)
        assert lost is not None and lost.id == last.id
        q.enqueue({"n": 2}, max_attempts=1)  # a claim that runs the rescue, and its job
        time.sleep(0.4)  # the lost worker's lease runs out
        list(listener.notifies(timeout=0.1))  # nothing finished yet; drop what came before
        assert q.claim("w2") is not None  # the rescue inside it: the lost job's last attempt
        assert q.get(last.id).state is durq.JobState.UNPROCESSABLE
        channels = [n.channel for n in listener.notifies(timeout=5, stop_after=1)]
        assert channels == ["durq_finished"]


def test_pool_is_opened_anew_after_fork(pg_url: str) -> None:
    q = durq.connect(pg_url)
    first = q.enqueue({"n": 1})
    q.wait_for_change(0)  # the parent also holds a LISTEN connection
    pid = os.fork()
    if pid == 0:  # the child: its own connections, and closing them leaves the parent's alone
        code = 1
        try:
            job = q.claim("child")
            if job is not None and job.id == first.id:
                q.complete(job, {"by": "child"})
                q.enqueue({"n": 2})
                q.close()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's pooled connection still works: the child never used or closed it.
    assert q.get(first.id).result == {"by": "child"}
    second = q.claim("parent")
    assert second is not None and second.payload == {"n": 2}
    q.wait_for_change(0)
    q.close()


def test_payloads_round_trip_exactly(pg_url: str) -> None:
    payload = {"b": 1, "a": [1e300, -0.0, 2**62, "\u0000", "é", None], "z": {"y": True}}
    with durq.connect(pg_url) as q:
        job = q.enqueue(payload)
        got = q.get(job.id).payload
    assert got == payload
    assert list(got) == ["b", "a", "z"]  # json, not jsonb: key order is kept


def test_nul_in_an_error_is_stored(pg_url: str) -> None:
    with durq.connect(pg_url) as q:
        q.enqueue({"n": 1})
        job = q.claim("w1")
        assert job is not None
        failed = q.fail(job, "bad\x00byte", retry=False)
    assert failed.last_error == "bad\ufffdbyte"


# Finished history as a year of work would leave it: finished jobs, one attempt each.
HISTORY = """
INSERT INTO durq_jobs (id, queue, payload, state, priority, run_at, attempts, max_attempts,
                       timeout, created_at, updated_at)
SELECT '00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'), 'default', '{}', 'succeeded',
       0, now(), 1, 5, 300, now(), now()
FROM generate_series(1, 50000) AS i;
INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome)
SELECT id, 1, 'w', now(), now(), 'succeeded' FROM durq_jobs;
ANALYZE;
"""


@pytest.mark.parametrize("queues", [("default",), ("default", "mail")])
def test_claim_and_rescue_walk_their_partial_indexes(pg_url: str, queues: tuple[str, ...]) -> None:
    # Guarantee 5: claim cost does not grow with finished jobs. The claim reads the index of
    # queued jobs, the rescue the index of running ones; neither reads the history (a lost
    # attempt's row is written from the job's). (A claim from every queue names the unpaused
    # ones, so it is one of these two statements.)
    from durq.backends import postgres

    with durq.connect(pg_url) as q:
        q.enqueue_many([{"n": n} for n in range(20)])
        q.enqueue_many([{"n": n} for n in range(20)], queue="mail")
        for _ in range(5):
            assert q.claim("w1") is not None
    sql(pg_url, HISTORY)
    one = len(queues) == 1
    params = {"worker_id": "w", "lease": 30.0, "limit": 1, "claim_id": "0" * 16}
    params.update(queue=queues[0] if one else None, queues=None if one else list(queues))
    rescue = "\n".join(str(r[0]) for r in sql(pg_url, "EXPLAIN " + postgres.Q["rescue_lost_jobs"]))
    assert "durq_jobs_lease" in rescue, rescue
    # The claim runs inside durq_claim and the completion inside durq_complete_many, whose
    # statements run on custom plans or, once the plan cache settles on one, on a generic
    # plan made without the parameters' values: both kinds, the completion of a running job.
    ((job_id, token, worker),) = sql(
        pg_url, "SELECT id, lease_token, worker_id FROM durq_jobs WHERE state = 'running' LIMIT 1"
    )
    done = {"ids": [job_id], "tokens": [token], "results": ["null"], "workers": [worker]}
    for mode in ("force_custom_plan", "force_generic_plan"):
        claim = plans_inside(pg_url, postgres.Q["claim"], params, mode)
        # durq_jobs_ready or durq_jobs_ready_in_queue, whichever the planner finds cheaper
        assert "Index Scan using durq_jobs_ready" in claim, claim
        complete = plans_inside(pg_url, postgres.Q["complete_many"], done, mode)
        assert "durq_jobs_pkey" in complete, complete
        for plan in (claim, complete, rescue):
            assert "Seq Scan on durq_jobs" not in plan, plan
            assert "Seq Scan on durq_attempts" not in plan, plan


def plans_inside(url: str, statement: str, params: dict[str, object], mode: str) -> str:
    """The plans of the statements that ``statement`` runs inside functions, as auto_explain
    logs them (sent to this client as notices), in a transaction rolled back after. Loading
    auto_explain takes a superuser, as the test server's ``postgres`` is."""
    import psycopg

    notices: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        for setting in (
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_nested_statements = on",
            "SET client_min_messages = log",
            f"SET plan_cache_mode = {mode}",
        ):
            conn.execute(setting)
        with conn.transaction(force_rollback=True):
            conn.execute(statement, params)
    plans = "\n".join(notices)
    assert "Query Text" in plans, plans  # auto_explain saw the statements
    return plans


def test_no_index_takes_an_entry_at_every_state_change(pg_url: str) -> None:
    # Guarantee 5, the write side: a claim and a completion each write a new row version,
    # and an index over every state would take an entry at both. Every index of durq_jobs
    # that names the state is partial, so a job enters each one once.
    rows = sql(pg_url, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'durq_jobs'")
    on_state = {name: d for name, d in rows if "state" in str(d).split(" WHERE ")[0]}
    assert on_state, rows
    for name, definition in on_state.items():
        assert " WHERE " in str(definition), (name, definition)


def test_bulk_actions_and_listings_walk_partial_indexes(pg_url: str) -> None:
    # The admin side of the same schema: with a long history of succeeded jobs, finding the
    # queued, running or unprocessable jobs for a bulk action or a purge, or listing the
    # unprocessable ones, reads an index of those jobs, not the history.
    from durq.backends import postgres

    with durq.connect(pg_url) as q:
        q.enqueue_many([{"n": n} for n in range(20)])
        q.enqueue_many([{"n": n} for n in range(20)], queue="mail")
        for _ in range(5):
            job = q.claim("w1")
            assert job is not None
        q.fail(job, "boom", retry=False)
    sql(pg_url, HISTORY)
    base = {"limit": 500, "after": "", "queue": None}
    statements = {
        "queued": (postgres.Q["ids_queued"], base),
        "queued in a queue": (postgres.Q["ids_queued_in_queue"], {**base, "queue": "mail"}),
        "running": (postgres.Q["ids_running"], base),
        "unprocessable": (postgres.Q["ids_finished"], {**base, "state": "unprocessable"}),
        "purge": (postgres.Q["purge_batch"], {**base, "state": "unprocessable", "older_than": 0}),
        "listing": (
            "SELECT * FROM durq_jobs WHERE state = %(state)s ORDER BY id DESC LIMIT 50",
            {"state": "unprocessable"},
        ),
    }
    for name, (statement, params) in statements.items():
        plan = "\n".join(str(r[0]) for r in sql(pg_url, "EXPLAIN " + statement, params))
        assert "Seq Scan" not in plan, (name, plan)
        assert "durq_jobs_pkey" not in plan, (name, plan)


def test_a_workers_settle_rescues_lost_jobs_at_most_once_a_second(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The trade written down in design.md: a worker's settle-and-claim looks for lost jobs
    # at most once a second (planning the rescue cost 0.3-1 ms a transaction), so a lost job
    # waits at most that much longer; a plain claim still rescues every time. The interval
    # is stretched to a minute here, so that a slow machine cannot end it mid-test.
    from durq.backends import postgres

    monkeypatch.setattr(postgres, "_RESCUE_EVERY", 60.0)

    def succeeded(job: durq.Job) -> list[durq.Finished]:
        return [durq.Finished(job, durq.Outcome.SUCCEEDED)]

    with durq.connect(pg_url) as q:
        jobs = [q.enqueue({"n": n}) for n in range(5)]
        assert q.claim("lost", lease=0.2) == q.get(jobs[0].id)
        mine = q.claim_many("w", limit=3, lease=60)
        assert [j.id for j in mine] == [j.id for j in jobs[1:4]]
        time.sleep(0.3)  # the lost worker's lease has expired
        _, claimed = q.settle(succeeded(mine[0]), worker_id="w", lease=60, claim=1)
        assert [(j.id, j.attempts) for j in claimed] == [(jobs[0].id, 2)]  # rescued, run again

        assert q.claim("lost too", lease=0.2) == q.get(jobs[4].id)
        time.sleep(0.3)  # expired too, but this process's settles rescued just now
        _, claimed = q.settle(succeeded(mine[1]), worker_id="w", lease=60, claim=5)
        assert claimed == []
        assert q.get(jobs[4].id).state is durq.JobState.RUNNING  # still the lost worker's

        monkeypatch.setattr(postgres, "_RESCUE_EVERY", 0.0)  # the interval has passed
        _, claimed = q.settle(succeeded(mine[2]), worker_id="w", lease=60, claim=5)
        assert [(j.id, j.attempts) for j in claimed] == [(jobs[4].id, 2)]
        assert q.claim("lost", lease=0.2) is None  # nothing left for a plain claim either


def test_a_bulk_change_that_keeps_its_jobs_queued_is_refused_not_repeated(pg_url: str) -> None:
    # Queued jobs are found for a bulk action with no cursor (each change moves them out of
    # the ready index); a change that did not would find the same jobs forever.
    with durq.connect(pg_url) as q:
        jobs = q.enqueue_many([1, 2, 3])
        keeps_them = "SELECT count(*) FROM durq_jobs WHERE id = ANY(%(ids)s) AND false"
        with pytest.raises(RuntimeError, match="must change them"):
            q._in_batches(durq.JobState.QUEUED, None, keeps_them, lambda n: None, notify=False)  # type: ignore[attr-defined]
        assert [q.get(j.id).state for j in jobs] == [durq.JobState.QUEUED] * 3
