"""Job ids as durq makes them: UUIDv7 strings, ordered by creation within a process, with
random bits that a forked child does not share with its parent."""

from __future__ import annotations

import os
import uuid

from durq.ids import new_job_id, new_job_ids


def rand_b(job_id: str) -> str:
    """The id's 62 random bits, as the hex digits they are written in."""
    return job_id.replace("-", "")[16:]


def test_ids_are_uuid7_in_creation_order() -> None:
    # Enough lone ids to use up the randomness read ahead several times over.
    ids = [new_job_id() for _ in range(2000)] + new_job_ids(500) + [new_job_id()]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({rand_b(i) for i in ids}) == len(ids)
    for job_id in ids:
        parsed = uuid.UUID(job_id)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, job_id)


def test_a_forked_child_does_not_reuse_its_parents_randomness() -> None:
    new_job_id()  # the parent has random digits read ahead now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, " ".join(new_job_id() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent = [new_job_id() for _ in range(3)]
    assert len(child) == 3
    assert not {rand_b(i) for i in child} & {rand_b(i) for i in parent}
