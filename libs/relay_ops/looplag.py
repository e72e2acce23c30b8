"""Event-loop lag: how late a 10 ms timer fires. Everything a process does waits for the loop, so a late
timer is a late ack, a late delivery, a late heartbeat; the histogram shows the stalls an average hides
(e.g. a connect storm's burst of handshakes, or a full garbage collection)."""

from __future__ import annotations

import asyncio

from prometheus_client import Histogram

LOOP_LAG = Histogram(
    "relay_event_loop_lag_seconds",
    "How late a timer due every 10 ms fired: the longest a ready callback waited for the loop",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
EVERY = 0.010


class LoopLag:
    """A callback re-armed every `EVERY` seconds (no task): ~100 cheap wake-ups a second."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._due = self._loop.time() + EVERY
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        LOOP_LAG.observe(max(0.0, now - self._due))
        self._due = now + EVERY
        self._handle = self._loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
