"""durq: a durable job queue. SQLite by default, PostgreSQL when you outgrow one machine.

import durq
q = durq.connect("sqlite:///var/durq.db")
q.enqueue({"n": 1})
"""

from durq.app import App
from durq.backends import connect
from durq.errors import (
    BackendError,
    BackendUnavailable,
    DurqError,
    HandlerError,
    InsecureBind,
    InvalidJob,
    InvalidState,
    JobNotFound,
    LeaseLost,
    NoDatabase,
    Unprocessable,
    WaitTimeout,
    WorkerError,
)
from durq.job import Attempt, Finished, Job, JobState, Outcome, WorkerInfo
from durq.queue import JobQueue, QueueSettings
from durq.retry import RetryPolicy
from durq.worker.context import cancel_requested, complete_in, complete_in_async, current_job

__all__ = [
    "App",
    "Attempt",
    "BackendError",
    "BackendUnavailable",
    "DurqError",
    "Finished",
    "HandlerError",
    "InsecureBind",
    "InvalidJob",
    "InvalidState",
    "Job",
    "JobNotFound",
    "JobQueue",
    "JobState",
    "LeaseLost",
    "NoDatabase",
    "Outcome",
    "QueueSettings",
    "RetryPolicy",
    "Unprocessable",
    "WaitTimeout",
    "WorkerError",
    "WorkerInfo",
    "cancel_requested",
    "complete_in",
    "complete_in_async",
    "connect",
    "current_job",
]
__version__ = "0.1.0"
