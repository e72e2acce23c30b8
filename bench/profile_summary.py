"""Where the time goes, from a py-spy `--format raw` profile (collapsed stacks): the functions with the
most samples on top of the stack (self) and anywhere in it (inclusive), as percentages."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def samples(raw: str) -> Iterator[tuple[str, int]]:
    """(collapsed stack, sample count) for each line of a py-spy raw profile."""
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            yield stack, int(count_text)


def _name(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/services/", "/libs/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['fn']} ({path})"


def summarize(raw: str, top: int = 20) -> dict[str, Any]:
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    idle = 0
    for stack, count in samples(raw):
        frames = [_name(f) for f in stack.split(";")[1:]]  # the first entry names the process/thread
        if not frames:
            continue
        total += count
        if any(f.startswith(("select (", "poll (", "_run_once")) for f in frames[-1:]):
            idle += count
        own[frames[-1]] += count
        for name in set(frames):
            anywhere[name] += count

    def share(counter: Counter[str]) -> list[str]:
        # frames under (nearly) every sample are the event loop itself: they say nothing
        telling = [(name, n) for name, n in counter.most_common() if n < 0.9 * total]
        return [f"{100 * n / total:.1f}% {name}" for name, n in telling[:top]] if total else []

    return {
        "samples": total,
        "idle_pct": round(100 * idle / total, 1) if total else None,
        "self": share(own),
        "inclusive": share(anywhere),
    }
