"""What a worker runs for a job: a ``Call`` made by a ``Runner`` (a plain handler, or an app's
tasks, which route each job by its task name)."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
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

    Raises ``HandlerError`` (one line naming ``spec``, the cause and what to do) when the
    name is malformed or a file path, the module cannot be imported, the attribute is
    missing or is not callable.
    """
    target = load_object(spec, "handler", "package.module:function")
    if not callable(target):
        kind = _a(type(target).__name__)
        raise HandlerError(f"cannot load handler {spec!r}: it is {kind}, not a function")
    handler: Handler = target
    return handler


def load_app(spec: str) -> Any:
    """Import the ``durq.App`` named ``package.module:app``; ``HandlerError`` in one line."""
    from durq.app import App

    app = load_object(spec, "app", "package.module:app")
    if not isinstance(app, App):
        kind = _a(type(app).__name__)
        raise HandlerError(f"cannot load app {spec!r}: it is {kind}, not a durq.App")
    return app


def load_object(spec: str, what: str, form: str) -> Any:
    """The object named ``package.module:attribute.path``; ``HandlerError`` in one line."""
    module_name, sep, attr_path = spec.partition(":")
    if _is_a_path(module_name):
        raise HandlerError(_path_given(spec, what, module_name, attr_path, form))
    if module_name.startswith("."):
        raise HandlerError(f"bad {what} {spec!r}: a relative module name; use its full name")
    if not sep or not module_name or not attr_path:
        raise HandlerError(f"bad {what} {spec!r}: use {form}")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise HandlerError(_not_found(spec, what, module_name, exc)) from exc
    except Exception as exc:
        # Any exception: an import runs the module's code, which may fail in any way.
        cause = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise HandlerError(f"cannot import {what} {spec!r}: {cause}") from exc
    for name in attr_path.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise HandlerError(_not_in(spec, what, target, name)) from None
    return target


# -- what to do when the import fails -----------------------------------------------------


def _a(noun: str) -> str:
    """``an int``, ``a str``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _is_a_path(module_name: str) -> bool:
    # importlib takes "../x/y.py" for a relative module name and fails with a TypeError
    # about a 'package' argument; "y.py" for a submodule "py" of "y".
    return "/" in module_name or "\\" in module_name or module_name.endswith(".py")


def _path_given(spec: str, what: str, path_text: str, attr_path: str, form: str) -> str:
    """A file path where a module name belongs: the module form that names the same file."""
    path = Path(path_text)
    parts = [path.stem if path.suffix == ".py" else path.name]
    folder = path.parent
    while (folder / "__init__.py").is_file():  # inside a package: name it from its top
        parts.insert(0, folder.name)
        folder = folder.parent
    use = f"bad {what} {spec!r}: that is a file path; use the module form, "
    suggested = f"{'.'.join(parts)}:{attr_path or form.partition(':')[2]}"
    if str(folder) == ".":
        return use + f"{suggested}, from this directory"
    top = f"{parts[0]}.py" if len(parts) == 1 else parts[0]
    return use + (
        f"{suggested}, from the directory that holds {top} ({folder}), or with PYTHONPATH={folder}"
    )


def _not_found(spec: str, what: str, module_name: str, exc: ModuleNotFoundError) -> str:
    missing = exc.name or module_name
    searched = (
        f"current directory {os.getcwd()}, PYTHONPATH {os.environ.get('PYTHONPATH') or 'not set'}"
    )
    if not (module_name == missing or module_name.startswith(missing + ".")):
        # The module was found, but something it imports was not: a missing dependency.
        return (
            f"cannot import {what} {spec!r}: {module_name} imports {missing!r}, which this "
            f"Python ({sys.executable}) cannot find; install it, or run durq from the "
            "environment the project's dependencies are installed in"
        )
    top = missing.split(".")[0]
    if missing != top:  # its package was found, without this module in it
        return f"cannot import {what} {spec!r}: {exc} ({searched})"
    return (
        f"cannot import {what} {spec!r}: no module named {top!r} ({searched}); run durq "
        f"from the directory that holds {top}.py or the {top} package, or set PYTHONPATH "
        "to that directory"
    )


def _not_in(spec: str, what: str, container: object, name: str) -> str:
    where = getattr(container, "__path__", None)
    if isinstance(container, types.ModuleType) and container.__file__ is None and where:
        # A directory with no __init__.py imports as an empty namespace package: usually
        # the project's own directory, seen from the one above it.
        folder = next(iter(where))
        return (
            f"cannot load {what} {spec!r}: {container.__name__} here is the directory "
            f"{folder}, not a module; run durq from inside it, or with PYTHONPATH={folder}"
        )
    return f"cannot load {what} {spec!r}: no {name!r} in it"
