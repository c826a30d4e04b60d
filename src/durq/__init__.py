"""durq: a durable job queue. SQLite by default, PostgreSQL when you outgrow one machine.

import durq
q = durq.connect("sqlite:///var/durq.db")
q.enqueue({"n": 1})
"""

from durq.backends import connect
from durq.errors import (
    BackendError,
    DurqError,
    HandlerError,
    InsecureBind,
    InvalidJob,
    InvalidState,
    JobNotFound,
    LeaseLost,
    Unprocessable,
    WorkerError,
)
from durq.job import Attempt, Job, JobState, Outcome, WorkerInfo
from durq.queue import JobQueue, QueueSettings
from durq.retry import RetryPolicy

__all__ = [
    "Attempt",
    "BackendError",
    "DurqError",
    "HandlerError",
    "InsecureBind",
    "InvalidJob",
    "InvalidState",
    "Job",
    "JobNotFound",
    "JobQueue",
    "JobState",
    "LeaseLost",
    "Outcome",
    "QueueSettings",
    "RetryPolicy",
    "Unprocessable",
    "WorkerError",
    "WorkerInfo",
    "connect",
]
__version__ = "0.1.0"
