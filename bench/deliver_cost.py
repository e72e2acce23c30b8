"""In-process Python cost of an event's delivery in the gateway: decode, dedupe, render, emit, frame writes, flush.

One `relay.emit` envelope at a time to a room of `--sockets` local sockets (1: the 1,000-rooms shape, where each
replica has one socket per event; 100: the busy room), through the gateway's real `EventDelivery`, python-socketio
server and `FanoutEmit`, with transports that take the frames and do nothing (the kernel's write is left out: it
is the same for every version of this code). Best of `--repeats` passes over `--events` distinct events.

    .venv/bin/python -m bench.deliver_cost --sockets 1
    PYTHONPATH=<other checkout>/services/gateway .venv/bin/python -m bench.deliver_cost   # the same on other code
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from types import SimpleNamespace

import socketio
import uvloop
from relay_contracts import Envelope
from relay_contracts import presence as p
from relay_log import configure_logging


class NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


async def measure(sockets: int, rooms: int, events: int, repeats: int) -> float:
    from relay_gateway.bootstrap import DIALECTS
    from relay_gateway.delivery import EventDelivery
    from relay_gateway.fanout import FLUSHER, FanoutEmit, FrameWriter
    from relay_gateway.rooms import scoped, user_room

    manager = FanoutEmit()
    sio = socketio.AsyncServer(client_manager=manager, async_mode="asgi")
    for n in range(rooms * sockets):
        eio_sid = f"e{n}"
        sid = await manager.connect(eio_sid, "/")
        await manager.enter_room(sid, "/", scoped("bench", user_room(f"room-{n % rooms}")))
        writer = FrameWriter(SimpleNamespace(transport=NullTransport()), 1 << 20, eio_sid)  # type: ignore[arg-type]
        sio.eio.sockets[eio_sid] = SimpleNamespace(writer=writer, closed=False)
    delivery = EventDelivery(sio, SimpleNamespace(), "bench", DIALECTS)  # type: ignore[arg-type]
    bodies = [body(n, rooms) for n in range(events)]
    best = float("inf")
    for _ in range(repeats):
        delivery._recent = type(delivery._recent)()  # every event new again
        started = time.perf_counter()
        for raw in bodies:
            await delivery.deliver(Envelope.from_bytes(raw))
            FLUSHER.flush()
        best = min(best, (time.perf_counter() - started) / events)
    return best * 1e6


def body(n: int, rooms: int) -> bytes:
    """A relay.emit as the SDK's Emitter builds it (relay_sdk.emit), to user `room-<n % rooms>`."""
    emit = p.Emit(scope="user", target=f"room-{n % rooms}", event="bench", payload={"t": time.time() * 1000, "n": n})
    return Envelope(type=p.EMIT, tenant="bench", correlationId="bench-deliver-cost", data=emit.model_dump()).to_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=1, help="local sockets in each event's room")
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configure_logging("bench", "WARNING")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # the gateway's loop
        us = runner.run(measure(args.sockets, args.rooms, args.events, args.repeats))
    print(json.dumps({"sockets_per_event": args.sockets, "us_per_event": round(us, 2)}))


if __name__ == "__main__":
    main()
