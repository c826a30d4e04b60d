"""The workloads: each runs one queue library in fresh storage, in its own processes.

Every measurement gets a fresh target (an SQLite directory, or a PostgreSQL database copied
from a template that holds the library's tables) and runs ``bench/peers_runner.py`` under
the library's own venv. Clocks: enqueue runs time themselves; a drain is timed here, from
"go" (sent once every consumer is connected) to the last consumer's report, so process
start-up and imports are never counted; pickup latency compares two processes' monotonic
clocks (one clock for the whole machine).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import queue
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any, TypeVar

BENCH = Path(__file__).resolve().parent
RUNNER = BENCH / "peers_runner.py"
PG_HOST = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
PG_URL = "postgresql://postgres@127.0.0.1:5432/{}"
T = TypeVar("T")


class BenchError(Exception):
    """A runner failed or hung; the message says which and ends with its stderr."""


@dataclasses.dataclass(frozen=True)
class System:
    """One queue library on one storage engine, and the python that runs it."""

    adapter: str  # the runner's adapter name
    backend: str  # "sqlite" or "postgresql"
    python: Path
    variant: str = ""  # a non-default setting, shown in the label
    env: tuple[tuple[str, str], ...] = ()  # how the adapter is told about the variant
    only: tuple[str, ...] = ()  # the workloads a variant runs in (empty: every one)

    @property
    def label(self) -> str:
        if self.adapter == "durq":
            storage = "SQLite" if self.backend == "sqlite" else "PostgreSQL"
            return f"durq ({storage}, {self.variant})" if self.variant else f"durq ({storage})"
        return f"{self.adapter} ({self.variant})" if self.variant else self.adapter

    @property
    def slug(self) -> str:
        variant = "".join(c if c.isalnum() else "-" for c in self.variant)
        return "-".join(p for p in (self.adapter, self.backend, variant) if p)

    def environ(self) -> dict[str, str]:
        return {**os.environ, **dict(self.env)}


class Runner:
    """A runner subprocess whose stdout lines arrive, timestamped, on a queue."""

    def __init__(
        self,
        system: System,
        args: list[str],
        log: Path,
        profile: tuple[Path, Path] | None = None,
    ) -> None:
        """``profile``: (py-spy, output file) to run the runner under the sampling profiler."""
        self.name = f"{system.slug} {args[0]}"
        self.log_path = log
        self._log: IO[str] = open(log, "a")  # noqa: SIM115 - closed in stop()
        argv = [str(system.python), str(RUNNER), system.adapter, *args]
        if profile is not None:
            # py-spy starts the runner itself; stdin and stdout pass through to it.
            # --nonblocking: sampled without pausing it (pausing a process of 16 threads
            # 250 times a second stretched every lock hold and cut durq's drain 5-10x).
            py_spy, output = profile
            spy = [str(py_spy), "record", "-r", "250", "--nonblocking", "-f", "raw"]
            argv = [*spy, "-o", str(output), "--", *argv]
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            cwd=BENCH.parent,
            env=system.environ(),
        )
        self.lines: queue.Queue[tuple[float, str | None]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put((time.perf_counter(), line.rstrip("\n")))
        self.lines.put((time.perf_counter(), None))

    def expect(self, prefix: str, timeout: float) -> tuple[float, str]:
        """The next stdout line that starts with ``prefix``, and when it arrived."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                arrived, line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(f"{self.name}: no {prefix!r} within {timeout:.0f} s") from None
            if line is None:
                self.process.wait()
                raise BenchError(
                    f"{self.name} exited {self.process.returncode} before {prefix!r}: "
                    + self.stderr_tail()
                )
            if line.startswith(prefix):
                return arrived, line

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def finish(self, timeout: float) -> None:
        """Wait for a runner that is done; a non-zero exit is an error."""
        try:
            code = self.process.wait(timeout)
        finally:
            self.stop()
        if code != 0:
            raise BenchError(f"{self.name} exited {code}: {self.stderr_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self._log.close()

    def stderr_tail(self) -> str:
        self._log.flush()
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) or "(no stderr)"


def run_once(system: System, args: list[str], log: Path, timeout: float = 600) -> str:
    """Run a runner to completion; its stdout."""
    with open(log, "a") as err:
        done = subprocess.run(
            [str(system.python), str(RUNNER), system.adapter, *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            timeout=timeout,
            cwd=BENCH.parent,
            env=system.environ(),
            check=False,
        )
    if done.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise BenchError(f"{system.slug} {args[0]} exited {done.returncode}: {tail}")
    return done.stdout


def pg(*argv: str) -> None:
    subprocess.run([*argv[:1], *PG_HOST, *argv[1:]], check=True, capture_output=True, text=True)


class Workspace:
    """Fresh storage per measurement, under ``var/peers-run`` and in PostgreSQL."""

    def __init__(self, root: Path, synchronous: str) -> None:
        self.root = root
        self.synchronous = synchronous
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._count = 0
        self.profiler: Path | None = None  # py-spy: record every drain consumer
        self.profiles = root / "profiles"
        self._templates: dict[System, str] = {}
        self._databases: list[str] = []

    def log(self, system: System) -> Path:
        return self.logs / f"{system.slug}.log"

    def profile(self, system: System, processes: int, index: int) -> tuple[Path, Path] | None:
        """Where to record a drain consumer, when profiling; else ``None``."""
        if self.profiler is None:
            return None
        self.profiles.mkdir(exist_ok=True)
        output = self.profiles / f"{system.slug}-{processes}proc-{self._count:04d}-{index}.txt"
        return self.profiler, output

    def common(self, target: str) -> list[str]:
        return ["--target", target, "--synchronous", self.synchronous]

    def fresh(self, system: System) -> tuple[str, Path]:
        """A new, set-up target for ``system``, and a scratch directory for its id files."""
        self._count += 1
        scratch = self.root / f"{self._count:04d}-{system.slug}"
        scratch.mkdir()
        if system.backend == "sqlite":
            target = str(scratch)
            run_once(system, ["setup", *self.common(target)], self.log(system))
            return target, scratch
        template = self._templates.get(system)
        if template is None:
            name = f"durqbench_{self.root.name}_tpl{len(self._templates)}"
            template = name.replace("-", "_")
            pg("createdb", template)
            self._databases.append(template)
            run_once(system, ["setup", *self.common(PG_URL.format(template))], self.log(system))
            self._templates[system] = template
        name = f"durqbench_{self.root.name}_{self._count:04d}".replace("-", "_")
        pg("createdb", "-T", template, name)
        self._databases.append(name)
        return PG_URL.format(name), scratch

    def discard(self, target: str, scratch: Path) -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        if target.startswith("postgresql://"):
            name = target.rsplit("/", 1)[1]
            pg("dropdb", "--if-exists", name)
            self._databases.remove(name)

    def close(self) -> None:
        for name in list(self._databases):
            subprocess.run(["dropdb", *PG_HOST, "--if-exists", name], capture_output=True)
        self._databases.clear()


def enqueue_rate(ws: Workspace, system: System, jobs: int, batch: bool) -> float:
    """Jobs per second for one producer process: one commit per job, or batches of 1000."""
    target, scratch = ws.fresh(system)
    role = "enqueue-batch" if batch else "enqueue"
    runner = Runner(system, [role, *ws.common(target), "--jobs", str(jobs + 1)], ws.log(system))
    try:
        runner.expect("ready", 120)
        runner.send("go")
        _, line = runner.expect("{", 1800)
        runner.finish(60)
    finally:
        runner.stop()
        ws.discard(target, scratch)
    result = json.loads(line)
    return float(result["jobs"] / result["seconds"])


@dataclasses.dataclass
class DrainResult:
    rate: float  # jobs per second
    duplicates: int  # jobs that ran more than once
    missing: int  # jobs that never ran


@dataclasses.dataclass(frozen=True)
class IoWork:
    """The I/O-bound drain: each job waits ``sleep`` seconds; ``concurrency`` at once."""

    concurrency: int
    sleep: float

    @property
    def ideal(self) -> float:
        """Jobs per second if the queue cost nothing: ``concurrency`` jobs every ``sleep``."""
        return self.concurrency / self.sleep


def drain(
    ws: Workspace, system: System, jobs: int, processes: int, io: IoWork | None = None
) -> DrainResult:
    """Fill ``jobs`` jobs, then time ``processes`` consumers emptying the queue (with ``io``,
    the I/O-bound drain: one consumer runs ``io.concurrency`` sleeping jobs at once)."""
    if io is not None and processes != 1:
        raise ValueError("the I/O-bound drain runs in one process")
    target, scratch = ws.fresh(system)
    runners: list[Runner] = []
    try:
        run_once(system, ["fill", *ws.common(target), "--jobs", str(jobs)], ws.log(system))
        for i in range(processes):
            ids = scratch / f"ids-{i}.txt"
            args = ["drain", *ws.common(target), "--ids-file", str(ids)]
            if io is not None:
                args[0] = "drain-io"
                args += ["--jobs", str(jobs), "--concurrency", str(io.concurrency)]
                args += ["--sleep", repr(io.sleep)]
            runners.append(Runner(system, args, ws.log(system), ws.profile(system, processes, i)))
        for runner in runners:
            runner.expect("ready", 120)
        started = time.perf_counter()
        for runner in runners:
            runner.send("go")
        finished = max(runner.expect("{", 1800)[0] for runner in runners)
        for runner in runners:
            runner.finish(60)
        duplicates, missing = check_runs(sorted(scratch.glob("ids-*.txt")), jobs)
    finally:
        for runner in runners:
            runner.stop()
        ws.discard(target, scratch)
    return DrainResult(jobs / (finished - started), duplicates, missing)


def check_runs(id_files: list[Path], jobs: int) -> tuple[int, int]:
    """From the consumers' id files: (jobs run more than once, jobs ``0..jobs-1`` never run).

    A number outside ``0..jobs-1`` is a job nobody enqueued: an error, not a count.
    """
    runs = collections.Counter[int]()
    for ids in id_files:
        runs.update(int(line) for line in ids.read_text().split())
    strangers = sorted(n for n in runs if not 0 <= n < jobs)
    if strangers:
        raise BenchError(f"jobs that were never enqueued ran: {strangers[:5]}")
    return sum(1 for count in runs.values() if count > 1), jobs - len(runs)


def pickup_latencies(ws: Workspace, system: System, samples: int) -> list[float]:
    """Seconds from a producer's enqueue call to an idle consumer starting the job.

    One consumer waits on an empty queue; one job at a time is enqueued after a random
    20-60 ms pause, so the consumer is idle each time. The first job is a warm-up.
    """
    target, scratch = ws.fresh(system)
    consumer = Runner(system, ["serve", *ws.common(target)], ws.log(system))
    producer: Runner | None = None
    latencies = []
    try:
        consumer.expect("ready", 120)
        time.sleep(1.0)  # let it reach its idle wait (LISTEN, first empty claims)
        producer = Runner(system, ["produce", *ws.common(target)], ws.log(system))
        producer.expect("ready", 120)
        rng = random.Random(samples)
        for n in range(samples + 1):
            time.sleep(rng.uniform(0.02, 0.06))
            producer.send(str(n))
            sent = float(producer.expect(f"sent {n} ", 60)[1].split()[2])
            ran = float(consumer.expect(f"ran {n} ", 60)[1].split()[2])
            if n:
                latencies.append(ran - sent)
    finally:
        if producer is not None:
            producer.stop()
        consumer.stop()
        ws.discard(target, scratch)
    return latencies


def info(ws: Workspace, system: System) -> dict[str, Any]:
    """Version and settings line, or ``{"error": ...}`` when the library cannot run here."""
    target = str(ws.root) if system.backend == "sqlite" else PG_URL.format("postgres")
    try:
        out = run_once(system, ["info", *ws.common(target)], ws.log(system), timeout=120)
    except (BenchError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    result: dict[str, Any] = json.loads(out)
    return result


def cpu_busy(window: float = 1.0) -> float:
    """The share of all CPUs that was busy over ``window`` seconds (``/proc/stat``)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    total0, idle0 = sample()
    time.sleep(window)
    total1, idle1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(busy_below: float = 0.25, max_wait: float = 120.0) -> tuple[float, float]:
    """On a shared machine: before a measurement, wait until other processes leave the CPUs
    mostly idle (less than ``busy_below`` of them busy over a second), at most ``max_wait``
    seconds. Returns (seconds waited, the busy share last seen); the benchmark's own
    processes are idle between measurements, so what is busy then is someone else."""
    started = time.monotonic()
    while True:
        busy = cpu_busy()
        waited = time.monotonic() - started
        if busy < busy_below or waited >= max_wait:
            return waited, busy


def order(systems: list[T], rep: int) -> list[T]:
    """Rotate who goes first each repetition, so no library always runs first or last."""
    shift = rep % len(systems) if systems else 0
    return systems[shift:] + systems[:shift]
