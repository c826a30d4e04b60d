"""Bad input gets a clear one-line error and changes nothing (docs/design.md, guarantee 6).

Each test runs many bad inputs against one busy queue, checking after every one that nothing
changed, so a change that some earlier refusal left behind is caught too.
"""

from __future__ import annotations

from collections import UserString
from collections.abc import Callable
from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest

import durq
from durq import InvalidJob, InvalidState, JobNotFound

from .conftest import snapshot

MIB = 1024 * 1024
UNKNOWN_ID = "01890a5d-ac96-774b-bcce-b302099a8057"


@pytest.fixture
def busy(queue: durq.JobQueue) -> durq.JobQueue:
    """A queue with a job in every state, so "changed nothing" has something to compare."""
    queue.enqueue_many(range(4), max_attempts=1)
    for how in ("complete", "fail", "hold"):
        job = queue.claim("w")
        assert job is not None
        if how == "complete":
            queue.complete(job, "ok")
        elif how == "fail":
            queue.fail(job, "boom")
    queue.cancel(queue.enqueue("c", queue="other").id)
    queue.pause("other")
    return queue


def running_job(q: durq.JobQueue) -> durq.Job:
    [job] = q.list_jobs(state="running")
    return job


def check_refused(
    q: durq.JobQueue, error: type[Exception], call: Callable[..., Any], *args: Any, **kwargs: Any
) -> None:
    """``call(*args, **kwargs)`` raises ``error`` with a one-line message, and the queue is as
    it was."""
    case = f"{call.__name__}(*{args!r:.80}, **{kwargs!r:.80})"
    before = snapshot(q)
    try:
        call(*args, **kwargs)
    except error as exc:
        message = str(exc)
        assert message and "\n" not in message, (case, message)
    except Exception as exc:
        pytest.fail(f"{case}: raised {type(exc).__name__} ({exc}), not {error.__name__}")
    else:
        pytest.fail(f"{case}: did not raise {error.__name__}")
    assert snapshot(q) == before, f"{case} changed the queue"


class NotJSON:
    pass


NOT_JSON = [
    {1, 2},
    NotJSON(),
    {"when": NotJSON()},
    float("nan"),
    {"x": float("inf")},
    [float("-inf")],
    b"bytes",
    {("tuple", "key"): 1},
    "\ud800",  # a lone surrogate: a Python string can hold one, UTF-8 cannot
    {"\udfff": 1},
    ["ok", "x\udc80y"],
]
TOO_BIG = ["x" * (2 * MIB), "x" * (MIB - 1)]  # the second: with its quotes, 1 byte too many


def test_a_payload_that_is_not_json_or_too_big(busy: durq.JobQueue) -> None:
    for payload in NOT_JSON + TOO_BIG:
        check_refused(busy, InvalidJob, busy.enqueue, payload)
        check_refused(busy, InvalidJob, busy.enqueue_many, ["a", payload, "b"])
        check_refused(busy, InvalidJob, busy.enqueue, payload, queue="brand-new")


def test_a_result_that_is_not_json_leaves_the_job_running(busy: durq.JobQueue) -> None:
    job = running_job(busy)
    for result in NOT_JSON + TOO_BIG[:1]:
        check_refused(busy, InvalidJob, busy.complete, job, result)
        check_refused(busy, InvalidJob, busy.complete_and_claim, job, result, worker_id="w")
    assert busy.complete(job, "fine").state is durq.JobState.SUCCEEDED


def test_a_payload_of_exactly_the_limit_is_taken(queue: durq.JobQueue) -> None:
    job = queue.enqueue("x" * (MIB - 2))
    assert len(queue.get(job.id).payload) == MIB - 2
    wide = "é" * ((MIB - 2) // 2)  # two bytes each in UTF-8: the limit counts bytes
    assert len(queue.enqueue(wide).payload) == len(wide)
    check_refused(queue, InvalidJob, queue.enqueue, wide + "é")


def test_the_payload_limit_is_a_setting(connect_queue: Callable[..., durq.JobQueue]) -> None:
    q = connect_queue(max_payload_bytes=100)
    q.enqueue("x" * 98)
    check_refused(q, InvalidJob, q.enqueue, "x" * 99)


BAD_QUEUE_NAMES: list[Any] = ["", "a b", "x" * 65, "ünïcode", "a/b", "a:b", "tab\t", 5, ["a"]]


def test_a_bad_queue_name(busy: durq.JobQueue) -> None:
    for name in [*BAD_QUEUE_NAMES, None]:
        check_refused(busy, InvalidJob, busy.enqueue, "x", queue=name)
        check_refused(busy, InvalidJob, busy.enqueue_many, ["x"], queue=name)
        check_refused(busy, InvalidJob, busy.claim, "w", queues=[name])
        check_refused(busy, InvalidJob, busy.claim, "w", queues=["default", name])
        check_refused(busy, InvalidJob, busy.pause, name)
        check_refused(busy, InvalidJob, busy.resume, name)
    for name in BAD_QUEUE_NAMES:  # here None means every queue
        check_refused(busy, InvalidJob, busy.list_jobs, queue=name)
        check_refused(busy, InvalidJob, busy.resubmit_all, "cancelled", queue=name)
        check_refused(busy, InvalidJob, busy.cancel_all, "queued", queue=name)


def test_the_longest_queue_name_is_taken(queue: durq.JobQueue) -> None:
    name = "Az09_.-" + "x" * 57
    assert queue.enqueue("x", queue=name).queue == name


def test_claim_queues_must_be_a_list_of_names(busy: durq.JobQueue) -> None:
    check_refused(busy, InvalidJob, busy.claim, "w", queues="default")
    check_refused(busy, InvalidJob, busy.claim, "w", queues=[])


BAD_OPTIONS: list[dict[str, Any]] = [
    {"delay": -1},
    {"delay": float("nan")},
    {"delay": float("inf")},
    {"delay": "soon"},
    {"max_attempts": 0},
    {"max_attempts": -3},
    {"max_attempts": 2.5},
    {"max_attempts": True},
    {"priority": "x"},
    {"priority": True},
    {"priority": 1.5},
    {"priority": None},
    {"timeout": 0},
    {"timeout": -1},
    {"timeout": float("nan")},
    # Past what a timestamp or a 64-bit integer holds: refused before anything is stored,
    # not stored and then unreadable.
    {"delay": 1e12},
    {"timeout": 1e300},
    {"priority": 2**63},
    {"priority": -(2**63) - 1},
    {"max_attempts": 2**63},
    {"priority": 10**30},
]


def test_bad_options(busy: durq.JobQueue) -> None:
    for options in BAD_OPTIONS:
        check_refused(busy, InvalidJob, busy.enqueue, "x", **options)
        check_refused(busy, InvalidJob, busy.enqueue_many, ["x", "y"], **options)


def test_options_equal_to_an_earlier_calls_are_still_checked(busy: durq.JobQueue) -> None:
    # enqueue reuses the checked options of an earlier call with equal ones; True == 1 == 1.0
    # and Fraction(1) == 1, but only the int is a priority, and no bool is a number of seconds.
    busy.enqueue("ok", priority=1, max_attempts=1, timeout=1, delay=0)
    for options in [
        {"priority": True},
        {"priority": 1.0},
        {"priority": Fraction(1)},
        {"max_attempts": True},
        {"timeout": True},
        {"delay": False},
        {"delay": Fraction(0)},
    ]:
        called = {"priority": 1, "max_attempts": 1, "timeout": 1, "delay": 0, **options}
        check_refused(busy, InvalidJob, busy.enqueue, "x", **called)
    # A UserString hashes and compares as its text, and is not a str.
    busy.enqueue("ok", task="send")
    for texts in ({"queue": UserString("default")}, {"task": UserString("send")}):
        check_refused(busy, InvalidJob, busy.enqueue, "x", **texts)
    for unhashable in ({"queue": ["default"]}, {"task": {"name": "t"}}, {"retry": [1.0]}):
        check_refused(busy, InvalidJob, busy.enqueue, "x", **unhashable)


def test_the_largest_numbers_are_taken(queue: durq.JobQueue) -> None:
    low = queue.enqueue("low", priority=-(2**63), max_attempts=2**63 - 1)
    high = queue.enqueue("high", priority=2**63 - 1, delay=0, timeout=86400.0 * 365)
    later = queue.enqueue("later", delay=86400.0 * 365 * 50)
    assert [j.id for j in queue.list_jobs()] == [later.id, high.id, low.id]
    first, second = queue.claim("w", lease=86400.0 * 365), queue.claim("w")
    assert first is not None and second is not None
    assert (first.id, second.id) == (high.id, low.id)
    assert queue.get(low.id).max_attempts == 2**63 - 1
    assert queue.claim("w") is None


def test_a_bad_dedupe_key(busy: durq.JobQueue) -> None:
    for key in ["", "k" * 256, 5, b"key"]:
        check_refused(busy, InvalidJob, busy.enqueue, "x", dedupe_key=key)


def test_a_bad_lease(busy: durq.JobQueue) -> None:
    job = running_job(busy)
    busy.enqueue("ready")
    for lease in [0, -1, float("nan"), "long", 1e12, 1e300]:
        check_refused(busy, InvalidJob, busy.claim, "w", lease=lease)
        check_refused(busy, InvalidJob, busy.heartbeat, job, lease=lease)
        check_refused(busy, InvalidJob, busy.complete_and_claim, job, worker_id="w", lease=lease)


def test_a_job_that_claim_did_not_return(busy: durq.JobQueue) -> None:
    for job in [None, "x", running_job(busy).id, {"id": running_job(busy).id}]:
        check_refused(busy, InvalidJob, busy.heartbeat, job)
        check_refused(busy, InvalidJob, busy.complete, job)
        check_refused(busy, InvalidJob, busy.fail, job, "e")
        check_refused(busy, InvalidJob, busy.release, job)
        check_refused(busy, InvalidJob, busy.complete_and_claim, job, worker_id="w")
        check_refused(busy, InvalidJob, busy.fail_and_claim, job, "e", worker_id="w")


def test_an_unknown_id(busy: durq.JobQueue) -> None:
    for job_id in [UNKNOWN_ID, "nope", ""]:
        check_refused(busy, JobNotFound, busy.get, job_id)
        check_refused(busy, JobNotFound, busy.cancel, job_id)
        check_refused(busy, JobNotFound, busy.resubmit, job_id)
        check_refused(busy, JobNotFound, busy.delete, job_id)
        check_refused(busy, JobNotFound, busy.attempts, job_id)


def test_bad_state_names(busy: durq.JobQueue) -> None:
    for state in ["bogus", "Queued", "", "done"]:
        check_refused(busy, InvalidJob, busy.list_jobs, state=state)
        check_refused(busy, InvalidJob, busy.resubmit_all, state)
        check_refused(busy, InvalidJob, busy.cancel_all, state)
        check_refused(busy, InvalidJob, busy.purge, timedelta(0), states=[state])
        check_refused(busy, InvalidJob, busy.purge, timedelta(0), states=["cancelled", state])


def test_purge_refuses_live_states_and_bad_ages(busy: durq.JobQueue) -> None:
    for state in ["queued", "running"]:
        check_refused(busy, InvalidState, busy.purge, timedelta(0), states=[state])
        check_refused(busy, InvalidState, busy.purge, timedelta(0), states=["succeeded", state])
    for older_than in [timedelta(seconds=-1), 3600, "7d"]:
        check_refused(busy, InvalidJob, busy.purge, older_than)


def test_list_jobs_refuses_a_bad_limit(busy: durq.JobQueue) -> None:
    for limit in [0, -1, 1001, 2.0, "10", True]:
        check_refused(busy, InvalidJob, busy.list_jobs, limit=limit)


def test_a_bad_worker_id(busy: durq.JobQueue) -> None:
    busy.enqueue("ready")
    job = running_job(busy)
    for worker_id in [None, "", 5, "w" * 256]:
        check_refused(busy, InvalidJob, busy.claim, worker_id)
        check_refused(busy, InvalidJob, busy.complete_and_claim, job, worker_id=worker_id)
        check_refused(busy, InvalidJob, busy.fail_and_claim, job, "e", worker_id=worker_id)
        check_refused(
            busy, InvalidJob, busy.worker_heartbeat, worker_id, host="h", pid=1, queues=None
        )


def test_a_bad_worker_heartbeat(busy: durq.JobQueue) -> None:
    for details in [
        {"host": None, "pid": 1, "queues": None},
        {"host": "", "pid": 1, "queues": None},
        {"host": "h", "pid": "1", "queues": None},
        {"host": "h", "pid": 1, "queues": "default"},
        {"host": "h", "pid": 1, "queues": ["bad name"]},
    ]:
        check_refused(busy, InvalidJob, busy.worker_heartbeat, "w", **details)
    assert busy.workers() == []


def test_errors_are_durq_errors() -> None:
    for error in (InvalidJob, InvalidState, JobNotFound, durq.LeaseLost, durq.BackendError):
        assert issubclass(error, durq.DurqError)
