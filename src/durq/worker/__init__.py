"""The worker (consumer): runs jobs, many at once, with leases kept and outcomes written in
batches. ``Worker`` is the runtime; the modules beside it are its parts:

- ``runtime.py``: the control loop, shutdown and the registry;
- ``attempt.py``: one attempt in flight (``RunningJob``);
- ``slots.py``: threads for plain functions, an event loop for ``async def`` tasks;
- ``settler.py``: outcomes written in batches with the next claims;
- ``leases.py``: every running job's lease renewed in one statement;
- ``runners.py``: what runs for a job (a plain handler, an app's tasks);
- ``context.py``: ``durq.current_job()``, ``durq.cancel_requested()`` and
  ``durq.complete_in()``;
- ``signals.py``: SIGTERM/SIGINT.
"""

from durq.errors import HandlerError, WorkerError
from durq.worker.context import cancel_requested, complete_in, complete_in_async, current_job
from durq.worker.runners import Call, Handler, HandlerRunner, Runner, load_handler
from durq.worker.runtime import (
    DEFAULT_CONCURRENCY,
    DEFAULT_GRACE,
    TIMEOUT_EXIT_CODE,
    Worker,
    current_queue,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_GRACE",
    "TIMEOUT_EXIT_CODE",
    "Call",
    "Handler",
    "HandlerError",
    "HandlerRunner",
    "Runner",
    "Worker",
    "WorkerError",
    "cancel_requested",
    "complete_in",
    "complete_in_async",
    "current_job",
    "current_queue",
    "load_handler",
]
