"""What the CLI's progress bars are fed: the ``progress`` callback of the bulk ``JobQueue``
methods, on every backend (conftest's ``queue_url``).

Each is called once per committed batch with how many jobs that batch went through, so the
calls add up to the method's answer; the bars themselves are tested in
test_cli_terminal.py.
"""

from __future__ import annotations

import time
from datetime import timedelta

import durq

MANY = 1201  # three of the backends' 500-job batches


def test_bulk_actions_report_each_batch(queue: durq.JobQueue) -> None:
    queue.enqueue_many(list(range(MANY)), queue="bulk")
    queue.enqueue("elsewhere", queue="other")

    for action, state, expected in [
        (queue.cancel_all, "queued", MANY),
        (queue.resubmit_all, "cancelled", MANY),
    ]:
        told: list[int] = []
        assert action(state, queue="bulk", progress=told.append) == expected
        assert sum(told) == expected and len(told) >= 3, told

    assert queue.cancel_all("queued", queue="bulk") == MANY
    time.sleep(0.01)
    told = []
    assert queue.purge(timedelta(0), states=["cancelled"], progress=told.append) == MANY
    assert sum(told) == MANY and len(told) >= 3, told
    assert queue.get(queue.list_jobs(queue="other")[0].id).state == "queued"  # left alone


def test_a_bulk_action_with_nothing_to_do_reports_nothing_done(queue: durq.JobQueue) -> None:
    told: list[int] = []
    assert queue.resubmit_all("unprocessable", progress=told.append) == 0
    assert queue.purge(timedelta(0), progress=told.append) == 0
    assert sum(told) == 0


def test_import_reports_the_jobs_it_went_through(queue: durq.JobQueue) -> None:
    exported = queue.enqueue_many(list(range(MANY)), queue="bulk")
    queue.cancel_all("queued")
    time.sleep(0.01)
    queue.purge(timedelta(0))
    kept = exported[:10]
    assert queue.import_jobs(kept) == len(kept)
    told: list[int] = []
    # The ten still present are gone through too (skipped), so the bar reaches its end.
    assert queue.import_jobs(exported, progress=told.append) == MANY - len(kept)
    assert sum(told) == MANY and len(told) >= 3, told
    assert len(queue.list_jobs(queue="bulk", limit=1000)) == 1000
