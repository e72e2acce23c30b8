"""A uvicorn server that drains before it stops: SIGTERM (or Ctrl-C) first runs the process's own
`drain` (stop taking work, finish what is in progress), then stops serving, and the process exits
normally so its `close()` runs. Stock uvicorn stops at once and re-raises the signal afterwards,
which killed Relay's processes before they could finish their work or close their connections."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable, Generator

import uvicorn
from relay_log import get_logger

log = get_logger(__name__)

Drain = Callable[[], Awaitable[None]]


# uvicorn's main loop wakes every 0.1 s to poll `should_exit` and refresh the Date header once a second: ten
# timer wake-ups a second of an otherwise idle process (~75 us of CPU each on the bench machine). Here it
# wakes once a second for the header and an exit is awaited, not polled.
TICK_SECONDS = 1.0


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain | None = None) -> None:
        self._exit = asyncio.Event()  # before uvicorn's __init__, which sets `should_exit`
        super().__init__(config)
        self._drain = drain
        self._draining: asyncio.Task[None] | None = None

    @property
    def should_exit(self) -> bool:
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit.set()
        else:
            self._exit.clear()

    async def main_loop(self) -> None:
        counter = 0  # on_tick refreshes the Date header whenever counter % 10 == 0 (every tick here)
        while not await self.on_tick(counter):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), TICK_SECONDS)
            counter = (counter + 10) % 864000

    @property
    def draining(self) -> bool:
        return self._draining is not None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        if self._draining is not None:
            # asked again while draining: stop now
            self.should_exit = True
            self.force_exit = sig == signal.SIGINT
            return
        log.info("process.draining", signal=signal.Signals(sig).name)
        self._draining = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            if self._drain is not None:
                await self._drain()
        except Exception:
            log.exception("process.drain_failed")
        finally:
            self.should_exit = True
