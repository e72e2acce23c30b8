"""Event-loop lag and garbage-collection pauses. Lag: how late a probe timer fires. Everything a process
does waits for the loop, so a late timer is a late ack, a late delivery, a late heartbeat; the histograms
show the stalls an average hides (a connect storm's burst of handshakes, a full garbage collection)."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import traceback

from prometheus_client import Histogram
from relay_log import get_logger

LOOP_LAG = Histogram(
    "relay_event_loop_lag_seconds",
    "How late the loop probe's timer fired (due 10 ms after the last tick while ticks come late, 100 ms while "
    "they come on time): the longest a ready callback waited for the loop",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
EVERY = 0.010  # while ticks come late: callbacks are waiting for the loop, probe it closely
# While ticks come on time: each timer wake-up of an idle process costs ~75 us of CPU on the bench machine
# (a VM), so 100 a second were 7.5-9.6 ms/s, most of an idle gateway's CPU (bench/reports/fanout.md,
# "Background CPU of an idle gateway"). A stall longer than QUIET_EVERY is always seen; a shorter one is
# seen if a tick falls due inside it, and from then on the loop is probed every 10 ms until ticks are on time.
QUIET_EVERY = 0.100
LATE = 0.005  # a tick later than this switches to EVERY


class LoopLag:
    """A callback re-armed `EVERY` seconds after a late tick, `QUIET_EVERY` after one on time (no task)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._due = 0.0
        self.next_due = time.monotonic() + EVERY  # when the next tick is due (time.monotonic): read by StallProbe
        self._last_late = time.monotonic()  # when a tick last came more than 25 ms late
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._arm(self.loop.time(), EVERY)

    def _arm(self, now: float, period: float) -> None:
        self._due = now + period
        self.next_due = time.monotonic() + period
        self._handle = self.loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self.loop.time()
        lag = max(0.0, now - self._due)
        LOOP_LAG.observe(lag)
        if lag > 0.025:
            self._last_late = time.monotonic()
        self._arm(now, EVERY if lag > LATE else QUIET_EVERY)

    def calm_for(self) -> float:
        """Seconds since a tick last fired more than 25 ms late."""
        return time.monotonic() - self._last_late

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


GC_PAUSE = Histogram(
    "relay_gc_pause_seconds",
    "Garbage collections by generation: each one stops the loop for its duration",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


class GcPauses:
    """Times every collection (gc.callbacks): a full one over a large heap stalls every socket at once."""

    def __init__(self) -> None:
        self._started = 0.0
        self._children = [GC_PAUSE.labels(str(g)) for g in range(3)]

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._children[info["generation"]].observe(time.perf_counter() - self._started)

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)


class StallProbe:
    """Diagnostics (`RELAY_STALL_PROBE_MS`): a thread that, when the loop's probe tick is that long overdue,
    logs what the loop's thread is running (its innermost frames), once per stall. Costs a thread waking
    every few ms; off by default."""

    def __init__(self, lag: LoopLag, threshold_ms: float) -> None:
        self._lag = lag
        self._threshold = threshold_ms / 1000
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="relay-stall-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _watch(self) -> None:
        log = get_logger("relay_ops.stall")
        reported_for = 0.0
        while not self._stop.wait(self._threshold / 4):
            due = self._lag.next_due
            stalled = time.monotonic() - due
            if stalled < self._threshold or due == reported_for:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            stack = traceback.extract_stack(frame, limit=40) if frame is not None else []
            reported_for = due
            log.warning(
                "loop.stalled",
                stalled_ms=round(stalled * 1000),
                # not `stack`: structlog's console renderer takes that key for a traceback text and fails on a list
                frames=[f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}:{f.name}" for f in stack[-14:]],
            )


class QuietFullCollections:
    """Full (generation 2) collections at a quiet moment instead of whenever allocation counts say so.

    CPython starts a full collection when enough new long-lived objects piled up: exactly during a burst
    (a connect storm's thousand new sockets), when a 20-130 ms stop of the loop hurts most (measured:
    one per storm per gateway, each a slow ack of every user on it). Here the automatic trigger for
    generation 2 is off; every `every` seconds a full collection runs as soon as the loop has been calm
    (no tick more than 25 ms late for the last second), and at the latest `every + give_up` seconds
    after the previous one. Generations 0 and 1 run as usual; cyclic garbage that reached generation 2
    waits at most that long."""

    def __init__(self, lag: LoopLag, *, every: float = 30.0, give_up: float = 270.0) -> None:
        self._lag = lag
        self._every = every
        self._give_up = give_up
        self._handle: asyncio.TimerHandle | None = None
        self._last = 0.0
        self._saved: tuple[int, int, int] | None = None

    def start(self) -> None:
        self._saved = gc.get_threshold()
        gc.set_threshold(self._saved[0], self._saved[1], 1 << 30)  # generation 2 only when we say
        self._last = time.monotonic()
        self._handle = self._lag.loop.call_later(self._every, self._maybe_collect)

    def _maybe_collect(self) -> None:
        now = time.monotonic()
        if self._lag.calm_for() >= 1.0 or now - self._last >= self._every + self._give_up:
            gc.collect(2)
            self._last = time.monotonic()
            self._handle = self._lag.loop.call_later(self._every, self._maybe_collect)
        else:
            self._handle = self._lag.loop.call_later(1.0, self._maybe_collect)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._saved is not None:
            gc.set_threshold(*self._saved)
