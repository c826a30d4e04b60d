"""``durq.App``: an application's tasks, periodic tasks and hooks, bound to one queue.

The app is also what a worker runs (``durq worker --app MOD:APP``): it routes each job to the
task named in ``job.task`` (the worker's ``Runner``), and hands the worker its periodic tasks
to schedule.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar, overload

from durq import codec, validation
from durq.app.hooks import FailureHook, Hooks, StartHook, SuccessHook
from durq.app.periodic import Periodic, check_no_required_arguments, checked_cron
from durq.app.tasks import EnqueueOptions, Task, TaskOptions, arguments_of
from durq.backends import connect
from durq.errors import DurqError, InvalidJob, Unprocessable, WaitTimeout
from durq.ids import new_job_id
from durq.job import JSON, Job, JobState
from durq.queue import JobQueue
from durq.retry import RetryPolicy
from durq.worker.context import CancelFlag
from durq.worker.context import running as running_as_current
from durq.worker.runners import Call

P = ParamSpec("P")
R = TypeVar("R")

_WAIT_SLICE = 1.0  # seconds between looks while waiting, whatever wakes the waiter (or not)


class App:
    """An application's tasks on the queue at ``url`` (default ``$DURQ_URL``).

    ``eager=True`` runs each enqueued task at once, in-process, instead of storing a job:
    for an application's own tests, which then need no worker and no database (the task's
    exception, if any, propagates to the caller). ``settings`` are ``QueueSettings`` fields.
    ``name`` (default: the module that made the app) names it in errors and logs.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        eager: bool = False,
        name: str | None = None,
        **settings: Any,
    ) -> None:
        self.url = url
        self.eager = eager
        self.settings = settings
        self.name = name or _caller_module()
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.periodic_tasks: list[Periodic] = []
        self.hooks = Hooks()
        self._queue: JobQueue | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<durq app {self.name}>"

    @property
    def queue(self) -> JobQueue:
        """The app's ``JobQueue``, connected on first use."""
        with self._lock:
            if self._queue is None:
                self._queue = connect(self.url, **self.settings)
            return self._queue

    def use_queue(self, queue: JobQueue) -> None:
        """Use ``queue`` instead of connecting to ``url`` (a worker given ``--db``)."""
        with self._lock:
            self._queue = queue

    def close(self) -> None:
        with self._lock:
            if self._queue is not None:
                self._queue.close()
                self._queue = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- defining tasks --------------------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int = 5,
        timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        retry_on: Sequence[type[BaseException]] | None = None,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int = 5,
        timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        retry_on: Sequence[type[BaseException]] | None = None,
    ) -> Any:
        """Register a function as a task: ``@app.task`` or ``@app.task(queue="email", ...)``.

        ``name`` defaults to ``module.function``. ``retry`` is the task's backoff (default:
        the queue's); ``retry_on`` the exceptions that are retried (default: every one; any
        other ends the job unprocessable at once). Bad options raise ``InvalidJob`` here, at
        import, not at the first enqueue.
        """
        options = _task_options(queue, priority, max_attempts, timeout, retry, retry_on)

        def register(function: Callable[..., Any]) -> Task[Any, Any]:
            if not callable(function):
                raise InvalidJob(f"@app.task decorates a function, not {function!r}")
            chosen = _default_name(function) if name is None else name
            task_name = validation.label(chosen, "task name")
            if task_name in self.tasks and self.tasks[task_name].fn is not function:
                raise InvalidJob(f"app {self.name} has a task named {task_name} already")
            made: Task[Any, Any] = Task(self, function, task_name, options)
            self.tasks[task_name] = made
            return made

        return register if fn is None else register(fn)

    def periodic(self, *, cron: str) -> Callable[[Task[P, R]], Task[P, R]]:
        """Run a task (with no arguments) at every slot of ``cron``, on whichever worker of
        this app is up, once per slot: ``@app.periodic(cron="*/5 * * * *")`` above
        ``@app.task()``. Slots are UTC; a sixth field is seconds."""
        expression = checked_cron(cron)

        def register(task: Task[P, R]) -> Task[P, R]:
            if not isinstance(task, Task) or self.tasks.get(task.name) is not task:
                raise InvalidJob("@app.periodic goes above @app.task() of the same app")
            check_no_required_arguments(task)
            self.periodic_tasks.append(Periodic(task, expression))
            return task

        return register

    def on_start(self, hook: StartHook) -> StartHook:
        """Call ``hook(job)`` as every attempt starts (see ``durq.app.hooks``)."""
        self.hooks.start.append(hook)
        return hook

    def on_success(self, hook: SuccessHook) -> SuccessHook:
        """Call ``hook(job, result)`` after every attempt that succeeds."""
        self.hooks.success.append(hook)
        return hook

    def on_failure(self, hook: FailureHook) -> FailureHook:
        """Call ``hook(job, error)`` after every attempt that fails."""
        self.hooks.failure.append(hook)
        return hook

    # -- enqueueing and waiting ------------------------------------------------------------

    def enqueue_task(
        self, task: Task[Any, Any], payloads: list[dict[str, JSON]], options: EnqueueOptions
    ) -> list[Job]:
        """Store (or in eager mode, run) one job of ``task`` per payload; what ``Task`` and
        ``Configured`` call."""
        if self.eager:
            return [self._run_eagerly(task, payload, options) for payload in payloads]
        common: dict[str, Any] = {
            "queue": options.queue,
            "priority": options.priority,
            "delay": options.delay,
            "max_attempts": options.max_attempts,
            "timeout": options.timeout,
            "task": task.name,
            "retry": task.options.retry,
        }
        if options.connection is not None:
            common["connection"] = options.connection
        if len(payloads) == 1:
            return [self.queue.enqueue(payloads[0], dedupe_key=options.dedupe_key, **common)]
        return self.queue.enqueue_many(payloads, **common)

    async def enqueue_task_async(
        self, task: Task[Any, Any], payload: dict[str, JSON], options: EnqueueOptions
    ) -> Job:
        """``enqueue_task`` for one job on the application's async connection."""
        if self.eager:
            return self._run_eagerly(task, payload, options)
        if options.connection is None:
            raise InvalidJob("enqueue_async needs connection= (an async psycopg connection)")
        return await self.queue.enqueue_async(
            payload,
            connection=options.connection,
            queue=options.queue,
            priority=options.priority,
            delay=options.delay,
            max_attempts=options.max_attempts,
            timeout=options.timeout,
            dedupe_key=options.dedupe_key,
            task=task.name,
            retry=task.options.retry,
        )

    def wait(self, job: Job | str, timeout: float = 30.0) -> Job:
        """The job once it has finished (succeeded, unprocessable or cancelled), its
        ``result`` set; ``durq.WaitTimeout`` if it has not within ``timeout`` seconds.

        Woken by the queue's change notification (as idle workers are), not a busy poll.
        """
        job_id = job.id if isinstance(job, Job) else str(job)
        validation.seconds(timeout, "timeout", allow_zero=True)
        if self.eager and isinstance(job, Job) and job.state.finished:
            return job
        deadline = time.monotonic() + timeout
        while True:
            current = self.queue.get(job_id)
            if current.state.finished:
                return current
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(f"job {job_id} is still {current.state} after {timeout:g}s")
            self.queue.wait_for_change(min(left, _WAIT_SLICE), finished=True)

    # -- what a worker running this app asks of it -----------------------------------------

    def call_for(self, job: Job) -> Call:
        """How a worker runs ``job``: the task it names, with its arguments."""
        task = self.tasks.get(job.task) if job.task is not None else None
        if task is None:
            why = _unknown(self, job)
            return Call(_fails(DurqError(why)), hooks=self.hooks or None)
        try:
            args, kwargs = arguments_of(job.payload)
        except ValueError as exc:
            return Call(_fails(Unprocessable(str(exc))), hooks=self.hooks or None)
        return Call(
            task.fn, tuple(args), kwargs, retry_on=task.options.retry_on, hooks=self.hooks or None
        )

    # -- eager mode ------------------------------------------------------------------------

    def _run_eagerly(
        self, task: Task[Any, Any], payload: dict[str, JSON], options: EnqueueOptions
    ) -> Job:
        limits = _Limits(**{k: v for k, v in self.settings.items() if k in _Limits.FIELDS})
        codec.encode(payload, "payload", limits.max_payload_bytes, limits.max_payload_depth)
        validation.job_options(
            options.queue, options.priority, options.delay, options.max_attempts, options.timeout
        )
        now = datetime.now(UTC)
        job = Job(
            id=new_job_id(),
            queue=options.queue,
            payload=payload,
            state=JobState.RUNNING,
            priority=options.priority,
            run_at=now,
            attempts=1,
            max_attempts=options.max_attempts,
            timeout=options.timeout,
            dedupe_key=options.dedupe_key,
            worker_id="eager",
            lease_expires_at=None,
            lease_token=None,
            last_error=None,
            task=task.name,
            result=None,
            created_at=now,
            updated_at=now,
            retry=task.options.retry,
        )
        args, kwargs = arguments_of(payload)
        with running_as_current(job, CancelFlag()):
            self.hooks.started(job)
            try:
                value = _call_now(task.fn, args, kwargs)
                text = codec.encode(
                    value,
                    "the task's return value",
                    limits.max_payload_bytes,
                    limits.max_payload_depth,
                )
            except BaseException as error:
                self.hooks.failed(job, error)
                raise
            self.hooks.succeeded(job, value)
        done = datetime.now(UTC)
        return dataclasses.replace(
            job, state=JobState.SUCCEEDED, result=codec.decode(text), updated_at=done
        )


class _Limits:
    """The payload limits an eager app applies (the queue's settings, without a queue)."""

    FIELDS = ("max_payload_bytes", "max_payload_depth")

    def __init__(
        self,
        max_payload_bytes: int = codec.DEFAULT_MAX_PAYLOAD_BYTES,
        max_payload_depth: int = codec.DEFAULT_MAX_PAYLOAD_DEPTH,
    ) -> None:
        self.max_payload_bytes = max_payload_bytes
        self.max_payload_depth = max_payload_depth


def _call_now(fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """Run a task's function to its end on this thread; an async one on an event loop of
    its own (in a helper thread if this one already runs a loop, as an async test does)."""
    if not inspect.iscoroutinefunction(fn):
        return fn(*args, **kwargs)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(fn(*args, **kwargs))
    with ThreadPoolExecutor(max_workers=1) as helper:
        return helper.submit(asyncio.run, fn(*args, **kwargs)).result()


def _fails(error: BaseException) -> Callable[[], Any]:
    def refuse() -> Any:
        raise error

    refuse.__qualname__ = "durq.App.call_for"
    return refuse


def _unknown(app: App, job: Job) -> str:
    if job.task is None:
        return (
            f"job {job.id} names no task, and app {app.name} runs tasks only: run plain jobs "
            "with a worker given --handler"
        )
    known = ", ".join(sorted(app.tasks)) or "none"
    return (
        f"app {app.name} has no task {job.task!r} (its tasks: {known}); "
        "a worker with a newer deploy of the app may have it, so the job is retried"
    )


def _task_options(
    queue: object,
    priority: object,
    max_attempts: object,
    timeout: object,
    retry: object,
    retry_on: object,
) -> TaskOptions:
    validation.job_options(queue, priority, 0.0, max_attempts, timeout)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidJob(f"retry must be a durq.RetryPolicy, not {retry!r}")
    errors: tuple[type[BaseException], ...] | None = None
    if retry_on is not None:
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        if not isinstance(retry_on, Sequence) or not all(
            isinstance(e, type) and issubclass(e, BaseException) for e in retry_on
        ):
            raise InvalidJob(f"retry_on must be exception classes, not {retry_on!r}")
        errors = tuple(retry_on)
    return TaskOptions(
        queue=queue,  # type: ignore[arg-type]  # checked above
        priority=priority,  # type: ignore[arg-type]
        max_attempts=max_attempts,  # type: ignore[arg-type]
        timeout=float(timeout),  # type: ignore[arg-type]
        retry=retry,
        retry_on=errors,
    )


def _default_name(fn: Callable[..., Any]) -> str:
    """``module.function``. A script run as ``python -m pkg.mod`` names its module as
    workers import it, not ``__main__``."""
    module = getattr(fn, "__module__", None) or "__main__"
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = getattr(spec, "name", None) or module
    return f"{module}.{getattr(fn, '__qualname__', getattr(fn, '__name__', 'task'))}"


def _caller_module() -> str:
    frame = sys._getframe(2)
    name = str(frame.f_globals.get("__name__", "app"))
    if name == "__main__":
        spec = frame.f_globals.get("__spec__")
        name = getattr(spec, "name", None) or os.path.basename(sys.argv[0]) or name
    return name
