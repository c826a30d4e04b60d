"""Summaries of py-spy's raw (collapsed-stack) profiles: where a process spent its samples."""

from __future__ import annotations

import collections
import re

# "func (path/to/file.py:123)" -> "func (file.py:123)"
_FRAME = re.compile(r" \((?:[^()]*/)?([^/()]+:\d+)\)$")
_UNTIMED = re.compile(r"^(wait_for_go|DurqAdapter\.queue|_find_and_load) ")


def summarize(raw: str, top: int = 12) -> str:
    """The frames with the most samples, on their own (self) and with callees (inclusive).

    Only the timed part counts: stacks inside an adapter's ``drain``, less the wait for "go"
    and the connecting before it (opening the queue, imports).
    """
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_FRAME.sub(r" (\1)", frame) for frame in stack.split(";")]
        if not any(".drain (" in f for f in frames) or any(_UNTIMED.search(f) for f in frames):
            continue
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return "  (no samples)"
    lines = [f"  {total} samples in the drain; self:"]
    lines += [f"  {100 * n / total:5.1f}% {frame}" for frame, n in own.most_common(top)]
    lines.append("  inclusive:")
    lines += [f"  {100 * n / total:5.1f}% {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)
