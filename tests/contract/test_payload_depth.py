"""Payloads and results are bounded in nesting as in size (docs/design.md, "Bad input and
hostile payloads"): deeper ones are refused with one line and change nothing, and a deep
value stored behind durq's back never breaks a reader."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import durq
from durq import InvalidJob
from durq.codec import READ_DEPTH, Unreadable

from .conftest import snapshot


def nested(depth: int) -> object:
    """A list nested ``depth`` levels deep: ``[[[...]]]``."""
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


def refused(q: durq.JobQueue, action: Callable[[], object]) -> str:
    before = snapshot(q)
    with pytest.raises(InvalidJob) as raised:
        action()
    assert snapshot(q) == before
    message = str(raised.value)
    assert "\n" not in message and len(message) < 200
    return message


def test_the_default_depth_is_taken_and_one_more_is_refused(queue: durq.JobQueue) -> None:
    job = queue.enqueue(nested(64))
    assert queue.get(job.id).payload == nested(64)
    message = refused(queue, lambda: queue.enqueue(nested(65)))
    assert message == "payload nests deeper than 64 levels"
    assert "deeper than 64" in refused(queue, lambda: queue.enqueue_many([1, nested(65)]))
    # Objects count as lists do, and brackets inside strings do not count at all.
    deep_object: object = 0
    for _ in range(65):
        deep_object = {"k": deep_object}
    refused(queue, lambda: queue.enqueue(deep_object))
    assert queue.enqueue({"text": "[" * 500}).payload == {"text": "[" * 500}


@pytest.mark.parametrize("depth", [950, 990, 100_000])
def test_absurd_depths_are_refused_in_one_line(queue: durq.JobQueue, depth: int) -> None:
    assert refused(queue, lambda: queue.enqueue(nested(depth))).startswith("payload nests")


def test_a_deep_result_leaves_the_job_running(queue: durq.JobQueue) -> None:
    queue.enqueue("x")
    job = queue.claim("w")
    assert job is not None
    assert "result nests deeper" in refused(queue, lambda: queue.complete(job, nested(65)))
    assert queue.get(job.id).state is durq.JobState.RUNNING
    assert queue.complete(job, nested(64)).result == nested(64)


def test_the_depth_is_a_setting(connect_queue: Callable[..., durq.JobQueue]) -> None:
    shallow = connect_queue(max_payload_depth=2)
    shallow.enqueue([[1]])
    refused(shallow, lambda: shallow.enqueue([[[1]]]))
    roomy = connect_queue(max_payload_depth=READ_DEPTH)
    assert roomy.get(roomy.enqueue(nested(READ_DEPTH)).id).payload == nested(READ_DEPTH)
    for bad in (0, READ_DEPTH + 1, "64", 2.5):
        with pytest.raises(InvalidJob, match="max_payload_depth"):
            connect_queue(max_payload_depth=bad)


@pytest.mark.parametrize("column", ["payload", "result"])
def test_a_stored_deep_value_reads_back_as_unreadable(
    queue: durq.JobQueue, write_behind_durq: Callable[[str, str, str], None], column: str
) -> None:
    job = queue.enqueue("fine")
    deep = json.dumps(nested(READ_DEPTH + 1))
    write_behind_durq(job.id, column, deep)
    for read in (queue.get(job.id), queue.list_jobs()[0]):
        value = getattr(read, column)
        assert isinstance(value, Unreadable) and value == deep
        # Every reader's next step works: the JSON form, and encoding it.
        assert json.loads(json.dumps(read.to_dict()))[column] == deep
    at_the_bound = json.dumps(nested(READ_DEPTH))
    write_behind_durq(job.id, column, at_the_bound)
    assert getattr(queue.get(job.id), column) == nested(READ_DEPTH)


def test_a_claimed_job_with_an_unreadable_payload_can_be_failed(
    queue: durq.JobQueue, write_behind_durq: Callable[[str, str, str], None]
) -> None:
    job = queue.enqueue("fine")
    write_behind_durq(job.id, "payload", "[" * 2000 + "0" + "]" * 2000)
    claimed = queue.claim("w")
    assert claimed is not None and isinstance(claimed.payload, Unreadable)
    failed = queue.fail(claimed, "unreadable", retry=False)
    assert failed.state is durq.JobState.UNPROCESSABLE
