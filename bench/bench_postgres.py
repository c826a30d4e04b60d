"""durq's PostgreSQL backend under the core benchmark's workloads, plus idle pickup latency.

    .venv/bin/python bench/bench_postgres.py [--db postgresql://…/postgres] [--quick] [--no-write]

The server URL defaults to ``$DURQ_TEST_POSTGRES_URL``, else the local server
(``postgresql://postgres@127.0.0.1:5432/postgres``). Each workload gets a fresh database,
created and dropped here. The timed loops are the shared ones of ``_common.py`` (the same code
``bench.py`` times on SQLite): enqueue with one commit each, ``enqueue_many`` in batches of
1,000, and a drain by 1 and 4 worker processes (claim, then ``complete_and_claim`` with a
no-op handler: one commit per job). Pickup latency is ``pickup.py``'s measurement: a real
``durq worker`` process idle in ``wait_for_change`` (here: LISTEN), the parent enqueueing one
job at a time. Unless ``--no-write``, the table goes between the ``postgres`` markers of
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

import _common
import docs_section
import pickup

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_PICKUP_MS = 5.0  # issue 6: median pickup on an idle PostgreSQL queue


@dataclasses.dataclass(frozen=True)
class Sizes:
    enqueue: int
    batch: int
    drain: int
    pickups: int


FULL = Sizes(enqueue=2000, batch=20_000, drain=20_000, pickups=200)
QUICK = Sizes(enqueue=200, batch=2000, drain=1000, pickups=30)


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextmanager
def fresh_database(server: str, label: str) -> Iterator[str]:
    """A new, empty database for one workload (durq creates its schema); dropped after."""
    name = f"durq_bench_{os.getpid()}_{label}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(create)
    try:
        yield with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(drop)


def run(server: str, sizes: Sizes) -> tuple[list[tuple[str, int, float]], list[float]]:
    """Timings ``(workload, jobs, seconds)`` and pickup latencies (seconds)."""
    timings = []
    with fresh_database(server, "enqueue") as url:
        timings.append(
            ("enqueue, one commit each", sizes.enqueue, _common.enqueue_each(url, sizes.enqueue))
        )
    with fresh_database(server, "batch") as url:
        seconds = _common.enqueue_batches(url, sizes.batch)
        timings.append(("enqueue_many, batches of 1,000", sizes.batch, seconds))
    for processes in (1, 4):
        with fresh_database(server, f"drain{processes}") as url:
            _common.fill(url, sizes.drain)
            seconds = _common.drain(url, processes, sizes.drain)
            label = f"drain, {processes} process{'es' if processes > 1 else ''}"
            timings.append((label, sizes.drain, seconds))
        print(timings[-1], file=sys.stderr)
    with fresh_database(server, "pickup") as url:
        acked, _, _ = pickup.measure(url, sizes.pickups, seed=1, idle_seconds=0)
    return timings, acked


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(server: str, timings: list[tuple[str, int, float]], pickups: list[float]) -> str:
    with psycopg.connect(server) as conn:
        version = conn.info.server_version
        fsync = conn.execute("SHOW fsync").fetchone()
        commit = conn.execute("SHOW synchronous_commit").fetchone()
    rows = ["| workload | jobs | seconds | jobs/s |", "|---|---:|---:|---:|"]
    for label, jobs, seconds in timings:
        rows.append(f"| {label} | {jobs:,} | {seconds:.2f} | {jobs / seconds:,.0f} |")
    median = 1000 * statistics.median(pickups)
    verdict = "meets" if median <= TARGET_PICKUP_MS else "misses"
    load = os.getloadavg()[0]
    return "\n".join(
        [
            "## PostgreSQL backend (`bench/bench_postgres.py`)",
            "",
            "The core workloads of `_common.py` against a local PostgreSQL, each on a fresh "
            "database; one run each. Drains are real worker processes doing claim, then "
            "`complete_and_claim` (one commit per job) with a no-op handler.",
            "",
            *rows,
            "",
            f"Idle pickup latency ({len(pickups)} jobs, one real `durq worker` waiting on "
            "LISTEN in `wait_for_change`, measured from the moment `enqueue` returned): "
            f"median {median:.2f} ms, p90 {_ms(pickups, 0.9):.2f} ms, "
            f"p99 {_ms(pickups, 0.99):.2f} ms, max {1000 * max(pickups):.2f} ms: "
            f"{verdict} the target of at most {TARGET_PICKUP_MS:g} ms.",
            "",
            f"PostgreSQL {version // 10000}.{version % 10000} on the same machine over TCP "
            f"(fsync={fsync[0] if fsync else '?'}, "
            f"synchronous_commit={commit[0] if commit else '?'}), Python "
            f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {load:.1f} at "
            f"the end (other processes share the CPUs), "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db",
        default=os.environ.get("DURQ_TEST_POSTGRES_URL") or DEFAULT_SERVER,
        help="URL of a database on the server to use; workloads get databases of their own",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args(argv)
    timings, pickups = run(args.db, QUICK if args.quick else FULL)
    text = report(args.db, timings, pickups)
    print(text)
    if not args.no_write:
        docs_section.write_section("postgres", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
