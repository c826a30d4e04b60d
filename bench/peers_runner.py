"""One benchmark process: drives one queue library in one role.

Run by ``bench/peers.py`` with the peers' venv python (durq: the project's venv), so the
peers' packages never meet durq's. It talks to the coordinator in lines: it prints
``ready`` when connected and waits for ``go`` on stdin where a clock is involved, and
prints its result as one JSON line.

Roles: ``info`` (version and settings), ``setup`` (create tables), ``fill`` (load jobs, not
timed), ``enqueue`` / ``enqueue-batch`` (timed producer), ``drain`` (a consumer that stops
when the queue is empty), ``drain-io`` (one consumer running ``--concurrency`` jobs at once,
each sleeping ``--sleep`` seconds first), ``serve`` (an idle consumer that reports each job
as it runs) and ``produce`` (enqueues one job per number read from stdin and reports when it
started).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

from peers_api import Adapter, Recorder, chunks

ADAPTERS = {
    "durq": "peers_durq",
    "huey": "peers_huey",
    "persist-queue": "peers_persistqueue",
    "litequeue": "peers_litequeue",
    "procrastinate": "peers_procrastinate",
    "pgqueuer": "peers_pgqueuer",
}


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_for_go() -> None:
    say("ready")
    line = sys.stdin.readline().strip()
    if line != "go":
        raise SystemExit(f"expected 'go' from the coordinator, got {line!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("adapter", choices=sorted(ADAPTERS))
    parser.add_argument(
        "role",
        choices=[
            "info",
            "setup",
            "fill",
            "enqueue",
            "enqueue-batch",
            "drain",
            "drain-io",
            "serve",
            "produce",
        ],
    )
    parser.add_argument("--target", required=True, help="directory (SQLite) or PostgreSQL URL")
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    parser.add_argument(
        "--jobs", type=int, default=0, help="how many jobs (fill, enqueue; drain-io: expected)"
    )
    parser.add_argument("--concurrency", type=int, default=1, help="drain-io: jobs at once")
    parser.add_argument("--sleep", type=float, default=0.0, help="drain-io: seconds per job")
    parser.add_argument("--batch", type=int, default=1000, help="jobs per batch")
    parser.add_argument("--ids-file", help="drain: where this process appends the ids it ran")
    args = parser.parse_args()

    module = importlib.import_module(ADAPTERS[args.adapter])
    adapter: Adapter = module.ADAPTER(args.target, args.synchronous)
    numbers = range(args.jobs)
    try:
        if args.role == "info":
            found = {
                "version": adapter.version(),
                "settings": adapter.settings(),
                "batch": adapter.batch_supported,
                "io": adapter.io_supported,
            }
            say(json.dumps(found))
        elif args.role == "setup":
            adapter.setup()
        elif args.role == "fill":
            adapter.fill(numbers)
        elif args.role in ("enqueue", "enqueue-batch"):
            adapter.enqueue_each(numbers[:1])  # warm up: connection, prepared statements
            wait_for_go()
            started = time.perf_counter()
            if args.role == "enqueue":
                adapter.enqueue_each(numbers[1:])
            else:
                for chunk in chunks(numbers[1:], args.batch):
                    adapter.enqueue_batch(chunk)
            say(json.dumps({"seconds": time.perf_counter() - started, "jobs": args.jobs - 1}))
        elif args.role == "drain":
            with open(args.ids_file, "a") as ids_file:
                recorder = Recorder(ids_file=ids_file)
                adapter.drain(recorder, wait_for_go)
            say(json.dumps({"ran": recorder.count}))
        elif args.role == "drain-io":
            with open(args.ids_file, "a") as ids_file:
                recorder = Recorder(ids_file=ids_file, until=args.jobs)
                adapter.drain_io(recorder, wait_for_go, args.concurrency, args.sleep)
            say(json.dumps({"ran": recorder.count}))
        elif args.role == "serve":
            say("ready")
            adapter.serve(Recorder(live=True))
        elif args.role == "produce":
            say("ready")
            for line in sys.stdin:
                n = int(line)
                started = time.monotonic()
                adapter.enqueue_each([n])
                say(f"sent {n} {started!r}")
    finally:
        adapter.close()


if __name__ == "__main__":
    main()
