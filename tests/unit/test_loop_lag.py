"""The loop-lag probe ticks every 100 ms while its ticks come on time (an idle process is not woken 100 times
a second) and every 10 ms while they come late, and still sees a stall, as does the stall probe."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY
from relay_ops.looplag import QUIET_EVERY, LoopLag, StallProbe
from structlog.testing import capture_logs


def observed() -> tuple[float, float]:
    """(ticks, summed lag) recorded by every probe so far."""
    count = REGISTRY.get_sample_value("relay_event_loop_lag_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("relay_event_loop_lag_seconds_sum") or 0.0
    return count, total


async def tick_times(n: int, timeout: float = 5.0) -> list[float]:
    """loop.time() at each of the next `n` ticks (polled every 2 ms against a deadline)."""
    loop = asyncio.get_running_loop()
    seen: list[float] = []
    last, _ = observed()
    deadline = loop.time() + timeout
    while len(seen) < n and loop.time() < deadline:
        await asyncio.sleep(0.002)
        count, _ = observed()
        if count != last:
            seen.append(loop.time())
            last = count
    assert len(seen) == n, f"only {len(seen)} ticks in {timeout} s"
    return seen


def stall(seconds: float) -> None:
    """The loop is stuck in a callback that keeps the CPU busy (as a long handler or a collection does)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


def mean_gap(times: list[float]) -> float:
    return (times[-1] - times[0]) / (len(times) - 1)


async def test_an_idle_loop_is_probed_every_100_ms_and_a_loop_kept_busy_every_10_ms() -> None:
    loop = asyncio.get_running_loop()
    probe = LoopLag(loop)
    probe.start()
    busy = True

    def hog() -> None:  # callbacks back to back, 8 ms each: a tick waits for the one running
        stall(0.008)
        if busy:
            loop.call_soon(hog)

    try:
        await tick_times(2)
        assert mean_gap(await tick_times(4)) >= 0.08  # ~10 wake-ups a second, not 100
        loop.call_soon(hog)
        await tick_times(2)  # the quiet period running when the loop became busy
        assert mean_gap(await tick_times(6)) <= 0.03
        busy = False
        await tick_times(2)
        assert mean_gap(await tick_times(3)) >= 0.08
    finally:
        busy = False
        probe.stop()


async def test_a_stall_of_an_idle_loop_is_recorded_as_lag() -> None:
    probe = LoopLag(asyncio.get_running_loop())
    probe.start()
    try:
        await tick_times(2)  # quiet periods now
        before_count, before_sum = observed()
        stall(QUIET_EVERY + 0.05)  # longer than a quiet period: a due tick falls inside
        await tick_times(1)
        count, total = observed()
        assert count - before_count == 1
        assert total - before_sum >= 0.04
        assert probe.calm_for() < 1.0  # over 25 ms late: a full collection waits for calm
    finally:
        probe.stop()


async def test_the_stall_probe_reports_a_stall_and_not_an_idle_loop() -> None:
    probe = LoopLag(asyncio.get_running_loop())
    probe.start()
    stalls = StallProbe(probe, threshold_ms=60)
    with capture_logs() as logs:
        stalls.start()
        try:
            await tick_times(4)  # idle: 100 ms between ticks, over the 60 ms threshold, is no stall
            assert [e for e in logs if e["event"] == "loop.stalled"] == []
            stall(0.4)
            await tick_times(1)
            reported = [e for e in logs if e["event"] == "loop.stalled"]
            assert len(reported) == 1
            assert reported[0]["stalled_ms"] >= 60
            assert any("test_loop_lag.py" in frame for frame in reported[0]["frames"])
        finally:
            stalls.stop()
            probe.stop()
