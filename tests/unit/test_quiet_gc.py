"""Full collections wait for a calm loop (not a burst), and never longer than the bound."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from relay_ops.looplag import QuietFullCollections


class FakeLag:
    def __init__(self, loop: asyncio.AbstractEventLoop, calm: float) -> None:
        self.loop = loop
        self.calm = calm

    def calm_for(self) -> float:
        return self.calm


def full_collections() -> tuple[list[int], Any]:
    seen: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            seen.append(1)

    gc.callbacks.append(count)
    return seen, count


async def test_a_full_collection_runs_when_the_loop_is_calm_and_not_while_it_is_busy() -> None:
    before = gc.get_threshold()
    seen, hook = full_collections()
    lag = FakeLag(asyncio.get_running_loop(), calm=0.0)  # busy: a tick was late just now
    collections = QuietFullCollections(lag, every=0.05, give_up=60)  # type: ignore[arg-type]
    try:
        collections.start()
        assert gc.get_threshold()[2] >= 1 << 30  # the automatic trigger is off
        await asyncio.sleep(0.3)
        assert seen == []  # due, but the loop is busy: deferred
        lag.calm = 5.0
        await asyncio.sleep(1.2)  # a deferred collection is retried every second
        assert len(seen) >= 1
    finally:
        collections.stop()
        gc.callbacks.remove(hook)
    assert gc.get_threshold() == before


async def test_a_busy_loop_gets_its_full_collection_at_the_latest_after_the_bound() -> None:
    seen, hook = full_collections()
    lag = FakeLag(asyncio.get_running_loop(), calm=0.0)  # never calm
    collections = QuietFullCollections(lag, every=0.05, give_up=0.5)  # type: ignore[arg-type]
    try:
        collections.start()
        await asyncio.sleep(1.8)
        assert len(seen) >= 1
    finally:
        collections.stop()
        gc.callbacks.remove(hook)
