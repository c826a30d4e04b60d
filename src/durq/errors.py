"""The errors durq raises. Every one is a ``DurqError``; its docstring is its default message."""

from __future__ import annotations


class DurqError(Exception):
    """durq failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class InvalidJob(DurqError):
    """The job or one of its options is not valid."""


class JobNotFound(DurqError):
    """No job has this id."""


class InvalidState(DurqError):
    """The job's state does not allow this action."""


class LeaseLost(DurqError):
    """The lease token is stale: another attempt owns the job now."""

    state: str | None = None  # the job's state when the call was refused, when known


class BackendError(DurqError):
    """The queue's database cannot be used."""


class BackendUnavailable(BackendError):
    """The queue's database cannot be reached for now (connection lost, server restarting,
    disk full, locked too long): the same call may work once it is back."""


class NoDatabase(BackendError):
    """There is no durq database where the URL points, and the caller asked durq not to make
    one (``durq.connect(url, create=False)``): a mistyped path or database name."""


class WaitTimeout(DurqError):
    """The job did not finish in the time given."""


class WorkerError(DurqError):
    """The worker cannot start."""


class HandlerError(WorkerError):
    """The handler cannot be loaded."""


class InsecureBind(DurqError):
    """Refusing to serve the dashboard on a non-loopback address without a token."""


class Unprocessable(Exception):
    """Raised by a handler: the job can never succeed, so it is not retried.

    Not a ``DurqError``: durq never raises it, handlers do.
    """
