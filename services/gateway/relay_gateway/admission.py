"""Pacing new connections: at most K start their handshake work in one event-loop pass.

Under a connect burst, the handshakes that land in one loop pass (Engine.IO's handshake, the Socket.IO
connect: sid generation, token checks, room joins, presence) all run before the loop reads anything else,
so an established socket's ping waits for all of them. With a budget of K per pass, the rest wait, first
come first served, for a later pass, and the frames read in between are answered between them
(bench/reports/presence.md, "Pacing").
"""

from __future__ import annotations

import asyncio
from collections import deque


class AdmissionGate:
    """Hands out at most `per_pass` admissions per event-loop pass, in arrival order; 0: unlimited.

    A pass's budget is refilled by a callback the loop runs at the start of the next pass, scheduled only
    while admissions are being handed out, so an idle gate costs nothing. Those waiting are admitted by the
    refill and run one pass after it. A waiting caller that is cancelled leaves the line; one cancelled
    after being admitted gives nothing back: a pass never hands out more than `per_pass`.
    """

    def __init__(self, per_pass: int) -> None:
        self.per_pass = per_pass
        self._left = per_pass
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._refill: asyncio.Handle | None = None

    @property
    def waiting(self) -> int:
        """Callers in line (a cancelled one counts until the refill skips it)."""
        return len(self._waiting)

    async def admit(self) -> None:
        """Return once this caller may start its connection work."""
        if self.per_pass <= 0:
            return
        if self._left > 0 and not self._waiting:
            self._left -= 1
            self._schedule_refill()
            return
        admitted = asyncio.get_running_loop().create_future()
        self._waiting.append(admitted)
        self._schedule_refill()
        # cancelled while in line: the future is cancelled too and the refill skips it
        await admitted

    def _schedule_refill(self) -> None:
        if self._refill is None:
            self._refill = asyncio.get_running_loop().call_soon(self._next_pass)

    def _next_pass(self) -> None:
        self._refill = None
        self._left = self.per_pass
        while self._left > 0 and self._waiting:
            admitted = self._waiting.popleft()
            if not admitted.done():
                admitted.set_result(None)
                self._left -= 1
        if self._waiting or self._left < self.per_pass:
            self._schedule_refill()
