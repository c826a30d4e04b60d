"""The application API, in process: defining tasks, enqueueing them, eager mode, hooks, waiting,
periodic definitions, and what a worker asks of an app. On every backend where one is used;
real worker processes are in test_task_workers.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import durq
from contract.conftest import snapshot
from durq import InvalidJob, JobState, RetryPolicy
from durq.app import Task
from durq.worker import Worker


@pytest.fixture
def app(queue_url: str) -> Any:
    with durq.App(queue_url, name="test_app") as made:
        yield made


# -- defining tasks ----------------------------------------------------------------------------


def test_a_task_is_named_after_its_module_and_function(app: durq.App) -> None:
    @app.task
    def plain(x: int) -> int:
        return x * 2

    @app.task(name="custom.name", queue="q1", priority=3, max_attempts=2, timeout=9)
    def named() -> None:
        pass

    assert isinstance(plain, Task)
    assert (
        plain.name
        == f"{__name__}.test_a_task_is_named_after_its_module_and_function.<locals>.plain"
    )
    assert named.name == "custom.name"
    assert (named.options.queue, named.options.priority) == ("q1", 3)
    assert (named.options.max_attempts, named.options.timeout) == (2, 9.0)
    assert app.tasks == {plain.name: plain, "custom.name": named}
    assert plain(21) == 42  # a plain call runs the function, here and now
    assert app.queue.list_jobs() == []


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"queue": "bad name"}, "queue name"),
        ({"priority": "high"}, "priority"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout": -1}, "timeout"),
        ({"retry": {"base": 1}}, "RetryPolicy"),
        ({"retry_on": ["not an exception"]}, "retry_on"),
        ({"name": ""}, "task name"),
    ],
)
def test_bad_task_options_are_refused_at_definition(
    app: durq.App, options: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidJob, match=says) as raised:
        app.task(**options)(lambda: None)
    assert "\n" not in str(raised.value)
    assert app.tasks == {}


def test_two_functions_cannot_share_a_task_name(app: durq.App) -> None:
    app.task(name="one")(lambda: 1)
    with pytest.raises(InvalidJob, match="has a task named one already"):
        app.task(name="one")(lambda: 2)


def test_a_bad_retry_policy_is_refused() -> None:
    for bad in ({"base": -1}, {"cap": float("nan")}, {"jitter": 1.5}, {"base": "1"}):
        with pytest.raises(InvalidJob, match="RetryPolicy"):
            RetryPolicy(**bad)  # type: ignore[arg-type]


# -- enqueueing --------------------------------------------------------------------------------


def test_enqueue_stores_a_job_of_the_task_with_its_options(app: durq.App) -> None:
    policy = RetryPolicy(base=2.0, cap=30.0, jitter=0.1)

    @app.task(queue="email", priority=2, max_attempts=7, timeout=45, retry=policy)
    def send_email(to: str, subject: str = "") -> dict[str, str]:
        return {"to": to}

    job = send_email.enqueue("ada@example.com", subject="hi")

    assert job.task == send_email.name and job.state is JobState.QUEUED
    assert job.payload == {"args": ["ada@example.com"], "kwargs": {"subject": "hi"}}
    assert (job.queue, job.priority, job.max_attempts, job.timeout) == ("email", 2, 7, 45.0)
    assert job.retry == policy
    stored = app.queue.get(job.id)
    assert stored == job
    assert app.queue.list_jobs(task=send_email.name) == [stored]
    assert app.queue.list_jobs(task="other.task") == []


def test_configure_changes_one_enqueue(app: durq.App) -> None:
    @app.task(queue="email")
    def send_email(to: str) -> None:
        pass

    job = send_email.configure(
        delay=60, priority=5, dedupe_key="k", queue="bulk", max_attempts=1, timeout=3
    ).enqueue("a@example.com")
    assert (job.queue, job.priority, job.dedupe_key, job.max_attempts) == ("bulk", 5, "k", 1)
    assert job.run_at > job.created_at
    again = send_email.configure(dedupe_key="k", queue="bulk").enqueue("b@example.com")
    assert again.id == job.id  # the dedupe key holds while the first is queued
    assert send_email.enqueue("c@example.com").queue == "email"  # the task's own again


def test_enqueue_many_stores_all_in_one_call(app: durq.App) -> None:
    @app.task
    def resize(path: str, width: int = 100) -> None:
        pass

    jobs = resize.enqueue_many([{"path": "a.png"}, {"path": "b.png", "width": 5}])
    assert [j.payload["kwargs"] for j in jobs] == [{"path": "a.png"}, {"path": "b.png", "width": 5}]
    assert {j.task for j in jobs} == {resize.name}
    before = snapshot(app.queue)
    with pytest.raises(InvalidJob, match="missing a required argument"):
        resize.enqueue_many([{"path": "c.png"}, {"width": 3}])
    assert snapshot(app.queue) == before


@pytest.mark.parametrize(
    ("args", "kwargs", "says"),
    [
        ((object(),), {}, "not JSON"),
        (({1, 2},), {}, "not JSON"),
        ((float("nan"),), {}, "not JSON"),
        ((), {}, "missing a required argument"),
        (("a", "b", "c"), {}, "too many positional arguments"),
        (("a",), {"nope": 1}, "unexpected keyword argument"),
    ],
)
def test_arguments_that_cannot_be_stored_are_refused_at_enqueue(
    app: durq.App, args: tuple[Any, ...], kwargs: dict[str, Any], says: str
) -> None:
    @app.task
    def send_email(to: Any, subject: str = "") -> None:
        pass

    app.queue.enqueue("something else")
    before = snapshot(app.queue)
    with pytest.raises(InvalidJob, match=says) as raised:
        send_email.enqueue(*args, **kwargs)
    assert "\n" not in str(raised.value)
    assert snapshot(app.queue) == before


# -- what a worker asks of an app --------------------------------------------------------------


def test_a_worker_routes_each_job_to_its_task(app: durq.App) -> None:
    ran: list[tuple[str, Any]] = []

    @app.task
    def first(n: int) -> str:
        ran.append(("first", n))
        return f"first {n}"

    @app.task
    async def second(n: int) -> str:
        await asyncio.sleep(0)
        ran.append(("second", durq.current_job().task))
        return f"second {n}"

    jobs = [first.enqueue(1), second.enqueue(2), first.enqueue(3)]
    assert Worker(app.queue, app, burst=True, install_signal_handlers=False).run() == 0

    done = [app.queue.get(j.id) for j in jobs]
    assert [j.state for j in done] == [JobState.SUCCEEDED] * 3
    assert [j.result for j in done] == ["first 1", "second 2", "first 3"]
    assert sorted(ran, key=str) == sorted(
        [("first", 1), ("first", 3), ("second", second.name)], key=str
    )


def test_a_job_of_an_unknown_task_fails_its_attempt_naming_task_and_app(app: durq.App) -> None:
    @app.task
    def known() -> None:
        pass

    job = app.queue.enqueue({"args": [], "kwargs": {}}, task="gone.task", max_attempts=3)
    plain = app.queue.enqueue({"n": 1}, max_attempts=3)
    Worker(app.queue, app, burst=True, install_signal_handlers=False).run()

    for each in (job, plain):
        failed = app.queue.get(each.id)
        assert (failed.state, failed.attempts) == (JobState.QUEUED, 1)  # retried later
        assert failed.last_error is not None and "test_app" in failed.last_error
    assert "no task 'gone.task'" in (app.queue.get(job.id).last_error or "")
    assert known.name in (app.queue.get(job.id).last_error or "")
    assert "--handler" in (app.queue.get(plain.id).last_error or "")


def test_retry_on_retries_only_the_errors_named(app: durq.App) -> None:
    @app.task(retry_on=(ConnectionError,), max_attempts=5)
    def picky(error: str) -> None:
        raise {"connection": ConnectionError, "value": ValueError}[error]("told to")

    retried, given_up = picky.enqueue("connection"), picky.enqueue("value")
    Worker(app.queue, app, burst=True, install_signal_handlers=False).run()

    assert (app.queue.get(retried.id).state, app.queue.get(retried.id).attempts) == (
        JobState.QUEUED,
        1,
    )
    dead = app.queue.get(given_up.id)
    assert (dead.state, dead.attempts) == (JobState.UNPROCESSABLE, 1)
    assert dead.last_error is not None and "ValueError: told to" in dead.last_error


def test_a_tasks_retry_policy_is_what_backs_its_job_off(app: durq.App) -> None:
    @app.task(retry=RetryPolicy(base=1000.0, cap=1000.0, jitter=0.0))
    def slow_to_retry() -> None:
        raise ConnectionError("down")

    @app.task
    def default_policy() -> None:
        raise ConnectionError("down")

    own, default = slow_to_retry.enqueue(), default_policy.enqueue()
    Worker(app.queue, app, burst=True, install_signal_handlers=False).run()

    for job, low, high in ((own, 999.0, 1001.0), (default, 0.5, 2.0)):
        failed = app.queue.get(job.id)
        wait = (failed.run_at - failed.updated_at).total_seconds()
        assert low <= wait <= high, (job.task, wait)


def test_hooks_run_around_every_attempt_and_a_broken_hook_changes_nothing(
    app: durq.App, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str, Any]] = []

    @app.on_start
    def started(job: durq.Job) -> None:
        seen.append(("start", job.task or "", durq.current_job().id == job.id))

    @app.on_success
    def succeeded(job: durq.Job, result: Any) -> None:
        seen.append(("success", job.task or "", result))

    @app.on_failure
    def failed(job: durq.Job, error: BaseException) -> None:
        seen.append(("failure", job.task or "", type(error).__name__))

    @app.on_start
    def broken(job: durq.Job) -> None:
        raise RuntimeError("a hook that fails")

    @app.task(name="good")
    def good() -> int:
        return 7

    @app.task(name="bad", max_attempts=1)
    def bad() -> None:
        raise KeyError("x")

    @app.task(name="async good")
    async def async_good() -> int:
        return 8

    @app.task(name="async bad", max_attempts=1)
    async def async_bad() -> None:
        raise LookupError("y")

    for task in (good, bad, async_good, async_bad):
        task.enqueue()
    Worker(app.queue, app, burst=True, concurrency=1, install_signal_handlers=False).run()

    assert sorted(seen) == sorted(
        [
            ("start", "good", True),
            ("success", "good", 7),
            ("start", "bad", True),
            ("failure", "bad", "KeyError"),
            ("start", "async good", True),
            ("success", "async good", 8),
            ("start", "async bad", True),
            ("failure", "async bad", "LookupError"),
        ]
    )
    assert {j.state for j in app.queue.list_jobs()} == {JobState.SUCCEEDED, JobState.UNPROCESSABLE}
    assert "hook" in caplog.text and "a hook that fails" in caplog.text


# -- waiting for a result ----------------------------------------------------------------------


class CountingQueue:
    """A real queue that counts the calls made to it."""

    def __init__(self, queue: durq.JobQueue) -> None:
        self.queue = queue
        self.gets = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)

    def get(self, job_id: str) -> durq.Job:
        self.gets += 1
        return self.queue.get(job_id)


def test_wait_returns_the_finished_job_woken_by_the_queue_not_a_busy_poll(
    app: durq.App, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("durq.app.application._WAIT_SLICE", 600.0)  # only a wake-up helps

    @app.task
    def double(n: int) -> int:
        return n * 2

    job = double.enqueue(21)
    counting = CountingQueue(app.queue)
    app.use_queue(counting)  # type: ignore[arg-type]

    def work_soon() -> None:
        time.sleep(1.5)
        with durq.connect(queue_url) as other:
            Worker(other, app, burst=True, install_signal_handlers=False).run()

    worker = threading.Thread(target=work_soon)
    worker.start()
    done = app.wait(job, timeout=30)
    worker.join()

    assert (done.state, done.result) == (JobState.SUCCEEDED, 42)
    # Woken by changes, it looked a handful of times in 1.5 s; a busy poll would look
    # thousands of times.
    assert counting.gets < 60, counting.gets
    assert app.wait(job.id, timeout=0).result == 42  # by id too; finished: no wait


def test_wait_beside_an_embedded_worker_sharing_the_queue(
    app: durq.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One queue object for both: a commit of the worker's is the waiter's own connection's,
    # which it must hear of too. The waiter's safety look is made longer than the test's
    # timeout, so only a wake-up can end a wait in time.
    monkeypatch.setattr("durq.app.application._WAIT_SLICE", 600.0)

    @app.task
    def triple(n: int) -> int:
        return n * 3

    counting = CountingQueue(app.queue)
    app.use_queue(counting)  # type: ignore[arg-type]
    worker = Worker(app.queue, app, install_signal_handlers=False, idle_wait=0.2)
    thread = threading.Thread(target=worker.run)
    thread.start()
    started = time.monotonic()
    try:
        for n in range(5):
            assert app.wait(triple.enqueue(n), timeout=30).result == n * 3
        # Not one wait slept its whole 30 s: each was woken by the worker's commit.
        assert time.monotonic() - started < 30, "a commit of the shared queue went unheard"
    finally:
        worker.stop()
        thread.join(timeout=30)


def test_wait_gives_up_with_wait_timeout(app: durq.App) -> None:
    @app.task
    def never_run() -> None:
        pass

    job = never_run.enqueue()
    with pytest.raises(durq.WaitTimeout, match=f"job {job.id} is still queued after 0.3s"):
        app.wait(job, timeout=0.3)
    with pytest.raises(durq.JobNotFound):
        app.wait("00000000-0000-7000-8000-000000000000", timeout=0.1)


# -- eager mode --------------------------------------------------------------------------------


def test_eager_mode_runs_each_task_at_once_with_no_database(tmp_path: Path) -> None:
    app = durq.App(f"sqlite:///{tmp_path}/never.db", eager=True)
    calls: list[str] = []

    @app.on_success
    def note(job: durq.Job, result: Any) -> None:
        calls.append(f"success {result}")

    @app.task(queue="email")
    def send_email(to: str) -> dict[str, str]:
        calls.append(f"ran {durq.current_job().task}")
        return {"sent": to}

    @app.task
    async def fetch(url: str) -> int:
        await asyncio.sleep(0)
        return len(url)

    job = send_email.enqueue("ada@example.com")
    assert (job.state, job.result, job.queue, job.task) == (
        JobState.SUCCEEDED,
        {"sent": "ada@example.com"},
        "email",
        send_email.name,
    )
    assert app.wait(job) is job
    assert fetch.enqueue("https://example.com").result == 19
    assert calls == [f"ran {send_email.name}", "success {'sent': 'ada@example.com'}", "success 19"]
    assert not (tmp_path / "never.db").exists()


def test_eager_mode_lets_the_tasks_error_through(tmp_path: Path) -> None:
    app = durq.App(eager=True)
    failures: list[BaseException] = []
    app.on_failure(lambda job, error: failures.append(error))

    @app.task
    def broken(n: int) -> None:
        raise ValueError(f"broken {n}")

    with pytest.raises(ValueError, match="broken 3"):
        broken.enqueue(3)
    assert [str(e) for e in failures] == ["broken 3"]
    with pytest.raises(InvalidJob, match="not JSON"):
        broken.enqueue(object())  # type: ignore[arg-type]


def test_eager_mode_works_inside_a_running_event_loop() -> None:
    app = durq.App(eager=True)

    @app.task
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    async def main() -> durq.Job:
        return add.enqueue(2, 3)

    assert asyncio.run(main()).result == 5


# -- periodic definitions ----------------------------------------------------------------------


def test_a_periodic_task_needs_a_good_cron_and_no_arguments(app: durq.App) -> None:
    @app.periodic(cron="*/5 * * * *")
    @app.task
    def cleanup(days: int = 7) -> None:
        pass

    assert [(p.task, p.cron) for p in app.periodic_tasks] == [(cleanup, "*/5 * * * *")]
    for bad in ("61 * * * *", "every day", "", "* * *"):
        with pytest.raises(InvalidJob, match="bad cron expression") as raised:
            app.periodic(cron=bad)
        assert "\n" not in str(raised.value)

    @app.task
    def needs(n: int) -> None:
        pass

    with pytest.raises(InvalidJob, match="cannot be periodic: it needs arguments \\(n\\)"):
        app.periodic(cron="* * * * *")(needs)
    assert len(app.periodic_tasks) == 1


def test_enqueue_periodic_stores_each_slot_once(queue: durq.JobQueue) -> None:
    from datetime import UTC, datetime, timedelta

    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    first = queue.enqueue_periodic("t", slot, {"args": [], "kwargs": {}}, task="t")
    assert first is not None and first.task == "t"
    assert first.dedupe_key == f"t@{slot.isoformat().replace('+00:00', 'Z')}"
    assert queue.enqueue_periodic("t", slot, {"args": [], "kwargs": {}}, task="t") is None
    earlier = slot - timedelta(seconds=1)
    assert queue.enqueue_periodic("t", earlier, {"args": [], "kwargs": {}}) is None
    later = queue.enqueue_periodic("t", slot + timedelta(seconds=1), {"args": [], "kwargs": {}})
    assert later is not None
    assert queue.enqueue_periodic("other", slot, {"args": [], "kwargs": {}}) is not None
    assert len(queue.list_jobs()) == 3


# -- typing ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_mypy_checks_enqueue_against_the_function(tmp_path: Path) -> None:
    source = tmp_path / "typed_app.py"
    source.write_text(
        "import durq\n"
        "app = durq.App(eager=True)\n"
        "@app.task(queue='email')\n"
        "def send_email(to: str, subject: str = '') -> dict[str, str]:\n"
        "    return {'to': to}\n"
        "send_email.enqueue('ada@example.com', subject='hi')\n"
        "send_email.enqueue(42)\n"
        "send_email.configure(delay=10).enqueue(to='x', subjekt='y')\n"
        "reveal_type(send_email('x'))\n"
    )
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(source)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = [line for line in checked.stdout.splitlines() if "typed_app.py" in line]
    assert any(
        ':7: error: Argument 1 to "enqueue" of "Task" has incompatible type "int"' in line
        for line in lines
    ), checked.stdout
    assert any(":8: error: Unexpected keyword argument" in line for line in lines), lines
    # A plain call returns what the function returns ("dict[str, str]", by any spelling).
    revealed = [line for line in lines if ":9: note: Revealed type is" in line]
    assert revealed and "dict[" in revealed[0] and "str, " in revealed[0], lines
    assert not any(":6:" in line for line in lines), lines
