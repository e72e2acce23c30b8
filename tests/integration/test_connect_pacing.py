"""Connect pacing (relay_gateway.admission) with real sockets: under a burst of connects, an established
socket's ping is answered between them, not after the whole burst.

The server (GuardedServer on uvicorn, in this process) spends 10 ms of loop time in each connect, as a
handshake's token checks, room joins and presence report do under a storm; the clients are plain
WebSocket connections in a thread of their own, so they keep sending while the server's loop is busy.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import socketio
from relay_gateway.admission import AdmissionGate
from relay_gateway.packets import GuardedServer
from websockets.sync.client import ClientConnection, connect

from tests.integration.test_fanout_path import serving

BURST = 40
CONNECT_WORK_SECONDS = 0.01


def paced(per_pass: int) -> type[GuardedServer]:
    class Paced(GuardedServer):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(admission=AdmissionGate(per_pass), **kwargs)

    return Paced


@contextmanager
def sockets(url: str, count: int) -> Iterator[list[ClientConnection]]:
    """`count` Engine.IO WebSocket connections, opened one after another."""
    with ExitStack() as stack:
        opened = []
        for _ in range(count):
            ws = stack.enter_context(connect(url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"))
            assert str(ws.recv(timeout=30)).startswith("0")  # Engine.IO OPEN
            opened.append(ws)
        yield opened


def burst_then_ping(url: str, connects_started: threading.Event) -> None:
    """BURST sockets send their Socket.IO CONNECT at once; once the server is into them, the established
    socket pings; then every CONNECT answer is read."""
    with sockets(url, 1) as (established,), sockets(url, BURST) as burst:
        established.send("40")
        assert str(established.recv(timeout=30)).startswith("40")
        for ws in burst:
            ws.send("40")
        assert connects_started.wait(30)
        established.send('421["ping",{}]')
        assert established.recv(timeout=60) == '431[{"pong":true}]'
        for ws in burst:
            assert str(ws.recv(timeout=60)).startswith("40")


async def connects_done_when_pinged(per_pass: int) -> tuple[int, int]:
    """(connects the server had finished when it answered the ping, connects in all)."""
    async with serving(server_class=paced(per_pass)) as server:
        sio: socketio.AsyncServer = server.sio
        connected = 0
        at_ping: list[int] = []
        connects_started = threading.Event()

        @sio.event
        async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
            nonlocal connected
            if connected > 0:  # the established socket's connect is not the burst's
                connects_started.set()
            # the loop time a storm's connect costs: blocking the loop, as CPU work does, is the point here
            time.sleep(CONNECT_WORK_SECONDS)  # noqa: ASYNC251
            connected += 1

        @sio.on("ping")
        async def ping(sid: str, data: object) -> object:
            at_ping.append(connected)
            return {"pong": True}

        sio.inline_events.add(("/", "ping"))
        await asyncio.to_thread(burst_then_ping, server.url, connects_started)
        return at_ping[0] - 1, connected - 1


async def test_a_ping_during_a_connect_burst_is_answered_before_the_burst_is_through() -> None:
    done_at_ping, burst = await connects_done_when_pinged(per_pass=1)
    assert burst == BURST
    # one connect a pass: the ping, read meanwhile, waits for a few connects, not for the rest of the burst
    assert done_at_ping < BURST // 2, f"the ping was answered after {done_at_ping} of {BURST} connects"
