"""Tasks: a function an app can run as a job, and the ways to enqueue it.

``@app.task`` turns a function into a ``Task``. Calling the task runs the function, here and
now; ``task.enqueue(...)`` stores a job that a worker runs later, with the same arguments,
checked by ``mypy`` against the function's signature (``ParamSpec``) and by durq at enqueue
(they must fit the signature and be JSON). ``task.configure(...)`` changes one enqueue's
options.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from durq.errors import InvalidJob
from durq.job import JSON, Job
from durq.retry import RetryPolicy

if TYPE_CHECKING:
    from durq.app.application import App

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a task's jobs are enqueued and retried unless one enqueue says otherwise."""

    queue: str = "default"
    priority: int = 0
    max_attempts: int = 5
    timeout: float = 300.0
    retry: RetryPolicy | None = None  # this task's backoff; None: the queue's
    # The errors that are retried; any other ends the job unprocessable at once. None: all.
    retry_on: tuple[type[BaseException], ...] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class EnqueueOptions:
    """One enqueue's options: the task's, with what ``configure`` changed."""

    queue: str
    priority: int
    max_attempts: int
    timeout: float
    delay: float = 0.0
    dedupe_key: str | None = None
    connection: Any = None  # the application's own database connection, if any


def payload_of(args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, JSON]:
    """A task job's payload: ``{"args": [...], "kwargs": {...}}``."""
    return {"args": list(args), "kwargs": dict(kwargs)}


def arguments_of(payload: JSON) -> tuple[list[Any], dict[str, Any]]:
    """The arguments stored in a task job's payload; ``ValueError`` if it is not one."""
    if (
        not isinstance(payload, dict)
        or set(payload) != {"args", "kwargs"}
        or not isinstance(payload["args"], list)
        or not isinstance(payload["kwargs"], dict)
    ):
        raise ValueError(
            f'a task\'s payload is {{"args": [...], "kwargs": {{...}}}}, not {payload!r}'
        )
    return payload["args"], payload["kwargs"]


class Task(Generic[P, R]):
    """A function registered with an app as a task (see ``durq.App.task``)."""

    def __init__(self, app: App, fn: Callable[P, R], name: str, options: TaskOptions) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here and now, as a plain call (no job is made)."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<durq task {self.name}>"

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Store a job that runs this task with these arguments; returns it (``job.task``
        is this task's name). ``InvalidJob`` when they do not fit the function or are not
        JSON, before anything is stored."""
        return self.configure().enqueue(*args, **kwargs)

    def enqueue_many(self, calls: Iterable[Mapping[str, Any]]) -> list[Job]:
        """One job per mapping of keyword arguments, in one transaction."""
        return self.configure().enqueue_many(calls)

    def configure(
        self,
        *,
        delay: float = 0.0,
        priority: int | None = None,
        dedupe_key: str | None = None,
        queue: str | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        connection: Any = None,
    ) -> Configured[P, R]:
        """This task with some of one enqueue's options changed; call ``.enqueue(...)`` on it.

        ``connection``: the application's own database connection (psycopg, or ``sqlite3``
        to the queue's file; ``enqueue_async`` for a psycopg ``AsyncConnection``): the job
        is written in the transaction that connection has open, so it exists exactly when
        that transaction commits, and not at all if it rolls back.
        """
        base = self.options
        options = EnqueueOptions(
            queue=base.queue if queue is None else queue,
            priority=base.priority if priority is None else priority,
            max_attempts=base.max_attempts if max_attempts is None else max_attempts,
            timeout=base.timeout if timeout is None else timeout,
            delay=delay,
            dedupe_key=dedupe_key,
            connection=connection,
        )
        return Configured(self, options)

    def check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """``InvalidJob`` when the arguments do not fit the function's signature."""
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidJob(f"task {self.name}: {exc}") from None


class Configured(Generic[P, R]):
    """A task with one enqueue's options set (``Task.configure``)."""

    def __init__(self, task: Task[P, R], options: EnqueueOptions) -> None:
        self.task = task
        self.options = options

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """As ``Task.enqueue``, with these options."""
        self.task.check_arguments(args, kwargs)
        return self.task.app.enqueue_task(self.task, [payload_of(args, kwargs)], self.options)[0]

    async def enqueue_async(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """As ``enqueue``, on the application's async connection (``connection=``)."""
        self.task.check_arguments(args, kwargs)
        payload = payload_of(args, kwargs)
        return await self.task.app.enqueue_task_async(self.task, payload, self.options)

    def enqueue_many(self, calls: Iterable[Mapping[str, Any]]) -> list[Job]:
        """As ``Task.enqueue_many``, with these options (a ``dedupe_key`` names one job)."""
        payloads = []
        for kwargs in calls:
            if not isinstance(kwargs, Mapping):
                raise InvalidJob(
                    f"enqueue_many takes mappings of keyword arguments, not {kwargs!r}"
                )
            self.task.check_arguments((), kwargs)
            payloads.append(payload_of((), kwargs))
        if self.options.dedupe_key is not None:
            raise InvalidJob("a dedupe_key names one job; it cannot be used with enqueue_many")
        return self.task.app.enqueue_task(self.task, payloads, self.options)
