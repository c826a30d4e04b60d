"""A job's attempt history as people read it (``durq jobs show``, the dashboard).

``Attempt.attempt`` is the job's attempt count when the attempt started, and a resubmit
resets that count, so two attempts of one job can both be "attempt 1". People number the
history straight through instead, and want to see where a resubmit came in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from durq.job import Attempt, Outcome


@dataclasses.dataclass(frozen=True)
class Entry:
    number: int  # 1, 2, 3 ... in the order the attempts started, across resubmits
    attempt: Attempt
    resubmitted: bool  # the job was resubmitted between the previous attempt and this one


def numbered(attempts: Sequence[Attempt]) -> list[Entry]:
    """``attempts`` (oldest first, as ``JobQueue.attempts`` returns them), numbered.

    A resubmit shows as the count going back: an attempt whose count is not above the one
    before (or, after a released attempt, which did not count, is below it).
    """
    entries = []
    previous: Attempt | None = None
    for number, attempt in enumerate(attempts, start=1):
        resubmitted = False
        if previous is not None:
            same_count_allowed = previous.outcome is Outcome.RELEASED
            went_back = attempt.attempt < previous.attempt or (
                attempt.attempt == previous.attempt and not same_count_allowed
            )
            resubmitted = went_back
        entries.append(Entry(number, attempt, resubmitted))
        previous = attempt
    return entries
