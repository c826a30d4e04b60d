"""Summaries of py-spy's raw (collapsed-stack) profiles: where a process spent its samples."""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

# "func (path/to/file.py:123)" -> "func (file.py:123)"
_FRAME = re.compile(r" \((?:[^()]*/)?([^/()]+:\d+)\)$")
_UNTIMED = re.compile(r"^(wait_for_go|DurqAdapter\.queue|_find_and_load) ")
# A thread with nothing to do: a worker's task thread waiting for a job, its control loop
# waiting on its inbox, a waker or an event loop asleep, a sleeping I/O-bound task. py-spy
# samples these (their waits are C calls it cannot tell from work); they are counted apart.
_WAITING = re.compile(
    r"^(ThreadSlots\._serve|Worker\._take|Condition\.wait|Event\.wait|EpollSelector\.select"
    r"|Thread\._wait_for_tstate_lock|SimpleQueue\.get|\w+\.<locals>\.sleep_then_record) "
)


def summarize(raw: str, top: int = 12) -> str:
    """The frames with the most samples, on their own (self) and with callees (inclusive).

    Only the timed part counts: the runner's main thread inside an adapter's ``drain`` (or
    ``drain_io``), less the wait for "go" and the connecting before it (opening the queue,
    imports), and every other thread (a worker's task threads and its waker; they start
    after "go").
    """
    own: collections.Counter[str] = collections.Counter()
    waiting: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_FRAME.sub(r" (\1)", frame) for frame in stack.split(";")]
        main_thread = any(f.startswith("<module> (peers_runner.py") for f in frames)
        timed = any(".drain (" in f or ".drain_io (" in f for f in frames)
        if (main_thread and not timed) or any(_UNTIMED.search(f) for f in frames):
            continue
        samples = int(count)
        if _WAITING.search(frames[-1]):
            waiting[frames[-1]] += samples
            continue
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return "  (no samples)"
    idle = sum(waiting.values())
    lines = [
        f"  {total} busy samples in the drain ({idle} more in threads waiting: "
        + ", ".join(f"{frame} {n}" for frame, n in waiting.most_common(4))
        + "); self:"
    ]
    lines += [f"  {100 * n / total:5.1f}% {frame}" for frame, n in own.most_common(top)]
    lines.append("  inclusive:")
    lines += [f"  {100 * n / total:5.1f}% {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Summarize the profiles of a finished run: ``peers_profile.py var/peers-run/<run>``."""
    drains: dict[str, list[str]] = {}
    for profile in sorted(Path(argv[0], "profiles").glob("*.txt")):
        drains.setdefault(profile.stem.rsplit("-", 1)[0], []).append(profile.read_text())
    for name, raws in drains.items():
        print(f"\nprofile of {name} ({len(raws)} processes):\n" + summarize("\n".join(raws)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
