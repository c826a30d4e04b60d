"""What a worker runs for a job: a ``Call`` made by a ``Runner`` (a plain handler, or an app's
tasks, which route each job by its task name)."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from durq.errors import HandlerError
from durq.job import Job

if TYPE_CHECKING:
    from durq.app.hooks import Hooks

Handler = Callable[[Job], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """How to run one job: ``target(*args, **kwargs)``, a plain function (run on a thread) or
    an ``async def`` (run on the worker's event loop)."""

    target: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # The errors that are retried; any other ends the job unprocessable. None: every error.
    retry_on: tuple[type[BaseException], ...] | None = None
    hooks: Hooks | None = None  # called around the attempt (an app's)

    @property
    def is_async(self) -> bool:
        return _is_async(self.target)

    def retries(self, error: BaseException) -> bool:
        return self.retry_on is None or isinstance(error, self.retry_on)


@functools.lru_cache(maxsize=1024)
def _is_async(target: Callable[..., Any]) -> bool:
    # Asked twice for every job: remembered per function (a worker runs a handful of them).
    return inspect.iscoroutinefunction(target)


class Runner(Protocol):
    """Turns each claimed job into the ``Call`` that runs it."""

    @property
    def name(self) -> str:
        """What the worker runs, for its log: ``package.module:function``."""

    def call_for(self, job: Job) -> Call:
        """The call for ``job``; never raises (a job it cannot run gets a call that fails)."""


class HandlerRunner:
    """Runs one plain handler, ``handle(job)``, for every job."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    @property
    def name(self) -> str:
        module = getattr(self.handler, "__module__", None) or "?"
        qualname = getattr(self.handler, "__qualname__", None) or repr(self.handler)
        return f"{module}:{qualname}"

    def call_for(self, job: Job) -> Call:
        return Call(self.handler, (job,))


def load_handler(spec: str) -> Handler:
    """Import ``package.module:function`` and return the function.

    Raises ``HandlerError`` (one line naming ``spec`` and the cause) when the name is
    malformed, the module cannot be imported, the attribute is missing or is not callable.
    """
    target = load_object(spec, "handler", "package.module:function")
    if not callable(target):
        kind = type(target).__name__
        raise HandlerError(f"cannot load handler {spec!r}: it is a {kind}, not a function")
    handler: Handler = target
    return handler


def load_app(spec: str) -> Any:
    """Import the ``durq.App`` named ``package.module:app``; ``HandlerError`` in one line."""
    from durq.app import App

    app = load_object(spec, "app", "package.module:app")
    if not isinstance(app, App):
        kind = type(app).__name__
        raise HandlerError(f"cannot load app {spec!r}: it is a {kind}, not a durq.App")
    return app


def load_object(spec: str, what: str, form: str) -> Any:
    """The object named ``package.module:attribute.path``; ``HandlerError`` in one line."""
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise HandlerError(f"bad {what} {spec!r}: use {form}")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        # Any exception: an import runs the module's code, which may fail in any way.
        cause = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise HandlerError(f"cannot import {what} {spec!r}: {cause}") from exc
    for name in attr_path.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise HandlerError(f"cannot load {what} {spec!r}: no {name!r} in it") from None
    return target
