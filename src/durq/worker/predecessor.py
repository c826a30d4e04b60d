"""What a starting worker says about an earlier process that used its worker id.

Under a process manager a worker id is reused: Supervisor restarts ``host:consumer-00`` with
the same ``--worker-id`` after a crash. The jobs the dead process held still name that id
until their leases expire and a claim rescues them, so for a while the new process seems to
hold jobs it never ran. The new worker says so once, in its log, with the jobs and when they
come back. When the earlier process is still alive (two workers given the same id), it says
that instead: their attempts would be indistinguishable in the history.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from durq.job import JobState, WorkerInfo
from durq.queue import JobQueue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def note(queue: JobQueue, worker_id: str, host: str, pid: int) -> str | None:
    """A line about the earlier process of ``worker_id``, or ``None`` when there is none."""
    earlier: WorkerInfo | None = next((w for w in queue.workers() if w.id == worker_id), None)
    held = [j for j in queue.list_jobs(JobState.RUNNING, limit=1000) if j.worker_id == worker_id]
    if earlier is not None and earlier.host == host and earlier.pid != pid and _alive(earlier.pid):
        return (
            f"worker id {worker_id} is also used by pid {earlier.pid}, which is running: "
            "give each worker its own --worker-id, or their attempts cannot be told apart"
        )
    if not held:
        return None
    before = f"pid {earlier.pid}, " if earlier is not None and earlier.pid != pid else ""
    now = datetime.now(UTC)
    back = max((j.lease_expires_at for j in held if j.lease_expires_at), default=now)
    jobs = ", ".join(j.id for j in held[:5]) + (
        f" and {len(held) - 5} more" if len(held) > 5 else ""
    )
    return (
        f"worker {worker_id} restarted: the earlier process ({before}gone) held {len(held)} "
        f"job(s): {jobs}; they run again when their leases expire, "
        f"in {max(0.0, (back - now).total_seconds()):.0f}s"
    )
