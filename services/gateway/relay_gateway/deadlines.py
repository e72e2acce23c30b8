"""Due times for many keys, kept in one-second slots and swept by one task.

Every connection has deadlines (its next Engine.IO ping, its pong, its token's expiry). A timer per
deadline costs ~0.6 KB per connection (uvloop's TimerHandle and UVTimer and their arguments, measured
with `bench.conn_memory`); an entry here costs a dict and a set slot. Deadlines fire in the sweep just
after their second: up to a second late, never early.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from relay_log import get_logger

log = get_logger(__name__)

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    def __init__(self, on_due: Callable[[K], None], *, clock: Callable[[], float] = time.time) -> None:
        self._on_due = on_due
        self._clock = clock
        self._slots: dict[int, set[K]] = {}
        self._heap: list[int] = []  # the slots that have keys, earliest first
        self._slot_of: dict[K, int] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: K) -> bool:
        return key in self._slot_of

    def set(self, key: K, at: float) -> None:
        """`key` falls due at `at` (on this instance's clock), replacing any earlier deadline of it."""
        self.discard(key)
        slot = math.ceil(at)
        bucket = self._slots.get(slot)
        if bucket is None:
            bucket = self._slots[slot] = set()
            heapq.heappush(self._heap, slot)
        bucket.add(key)
        self._slot_of[key] = slot
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="relay-deadlines")

    def set_in(self, key: K, seconds: float) -> None:
        self.set(key, self._clock() + seconds)

    def discard(self, key: K) -> None:
        slot = self._slot_of.pop(key, None)
        if slot is None:
            return
        bucket = self._slots.get(slot)
        if bucket is not None:
            bucket.discard(key)
            if not bucket:
                del self._slots[slot]  # its heap entry is skipped when it comes up

    def due(self, now: float) -> list[K]:
        """Take every key due at `now` or before (the sweep's step; tests call it directly)."""
        taken: list[K] = []
        while self._heap and self._heap[0] <= now:
            bucket = self._slots.pop(heapq.heappop(self._heap), None)
            if bucket:
                for key in bucket:
                    del self._slot_of[key]
                taken.extend(bucket)
        return taken

    async def _sweep(self) -> None:
        while self._slot_of:
            now = self._clock()
            await asyncio.sleep(max(0.0, math.floor(now) + 1 - now) + 0.001)
            for key in self.due(self._clock()):
                try:
                    self._on_due(key)
                except Exception:
                    log.exception("deadline.handler_failed")
