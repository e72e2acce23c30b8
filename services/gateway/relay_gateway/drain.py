"""Draining a gateway replica on SIGTERM, the way Phoenix's connection drainer does it.

The replica turns unready first (load balancers stop sending new connections), then closes its
sockets' transports in staggered batches spread over `GATEWAY_DRAIN_SECONDS`, so their clients'
automatic reconnects arrive at the other replicas spread out instead of as one stampede. A closed
transport (not a Socket.IO `disconnect` packet, after which socket.io-client would not reconnect)
makes clients reconnect by themselves; they fetch their gap by `seq`, and presence's reconnect grace
keeps their users from flapping offline. Events keep flowing to the sockets not yet closed.
"""

from __future__ import annotations

import asyncio
import time

from engineio.async_server import AsyncServer as EngineServer
from relay_log import get_logger

log = get_logger(__name__)

MIN_BATCH_INTERVAL = 0.2  # seconds between batches, at the least


def batches(sids: list[str], window: float) -> tuple[list[list[str]], float]:
    """Split `sids` into evenly sized batches, one every `pause` seconds across `window`."""
    if not sids:
        return [], 0.0
    count = max(1, min(len(sids), int(window / MIN_BATCH_INTERVAL)))
    size = -(-len(sids) // count)
    groups = [sids[i : i + size] for i in range(0, len(sids), size)]
    return groups, window / len(groups)


async def drain_sockets(eio: EngineServer, window: float) -> int:
    """Close every transport of this replica over `window` seconds; returns how many were closed."""
    started, closed = time.monotonic(), 0
    groups, pause = batches(list(eio.sockets), window)
    log.info("gateway.drain_started", sockets=sum(map(len, groups)), batches=len(groups), window=window)
    for index, group in enumerate(groups):
        if index:
            await asyncio.sleep(pause)
        await asyncio.gather(*(eio.disconnect(sid) for sid in group), return_exceptions=True)
        closed += len(group)
    late = list(eio.sockets)  # connected meanwhile, by a client that did not look at readiness
    await asyncio.gather(*(eio.disconnect(sid) for sid in late), return_exceptions=True)
    closed += len(late)
    log.info("gateway.drained", sockets=closed, seconds=round(time.monotonic() - started, 3))
    return closed
