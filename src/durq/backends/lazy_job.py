"""The ``Job`` a lone enqueue returns: its id at once, its other fields when first read.

A producer calls ``enqueue`` for the durable write and mostly reads the job's id, if anything.
Building the other eighteen fields (two datetimes, the payload decoded back from the text
that was stored, a slot set for each) was a tenth of a lone enqueue's time on SQLite, most of
it spent after the commit's sync, when the caches are cold. So ``lazy_job`` stores how to
build them, and the first read of any other field builds them all, once.

It is a ``Job`` in every way a caller sees: ``isinstance``, equality and hashing with a ``Job``
read back, ``repr``, ``to_dict``, pickling and copying (which give a plain ``Job``). Only
``type(job) is Job`` tells them apart, also for what ``dataclasses.replace`` makes of one (a
``LazyJob`` with every field set).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from durq.backends._common import SETTERS, new_job
from durq.job import Job

FieldMaker = Callable[[], Sequence[Any]]  # every field of the job, in declaration order

_FIELDS = frozenset(Job.__slots__)
_fill_lock = threading.Lock()  # two threads reading a new job at once build it once


class LazyJob(Job):
    __slots__ = ("_fields",)  # the FieldMaker, or None once the fields are set

    def __getattr__(self, name: str) -> Any:
        # Python calls this only when the normal lookup finds nothing: a field not yet set.
        if name not in _FIELDS:
            raise AttributeError(f"'Job' object has no attribute {name!r}")
        with _fill_lock:
            make = _GET_FIELDS(self)
            if make is not None:
                for set_field, value in zip(SETTERS, make(), strict=True):
                    set_field(self, value)
                _SET_FIELDS(self, None)
        return object.__getattribute__(self, name)

    def _plain(self) -> Job:
        return new_job([getattr(self, name) for name in Job.__slots__])

    def __eq__(self, other: object) -> bool:
        # The dataclass's __eq__ compares only objects of the very same class.
        if not isinstance(other, Job):
            return NotImplemented
        return self._plain() == (other._plain() if isinstance(other, LazyJob) else other)

    __hash__ = Job.__hash__

    def __repr__(self) -> str:
        return repr(self._plain())

    def __reduce__(self) -> tuple[Any, ...]:
        return Job, tuple(getattr(self, name) for name in Job.__slots__)


_SET_FIELDS = vars(LazyJob)["_fields"].__set__
_GET_FIELDS = vars(LazyJob)["_fields"].__get__
_SET_ID = SETTERS[Job.__slots__.index("id")]
_new = object.__new__


def _reset_after_fork() -> None:
    # A thread of the parent may have held the lock at the fork; in the child it never ends.
    global _fill_lock
    _fill_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def lazy_job(job_id: str, fields: FieldMaker) -> Job:
    """A job with the id ``job_id`` whose other fields ``fields()`` gives when first read."""
    job = _new(LazyJob)
    _SET_ID(job, job_id)
    _SET_FIELDS(job, fields)
    return job
