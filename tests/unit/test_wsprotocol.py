"""A detached WebSocket connection (relay_gateway.wsprotocol): its messages reach the receiver in order, reading
pauses while too many wait and resumes once they are handled, and the end is heard once, last. A fake
transport stands in for the socket."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from relay_gateway.wsprotocol import INBOX_LIMIT, RelayWebSocketProtocol
from uvicorn.server import ServerState


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = 0
        self.resumed = 0
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 3000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def write(self, data: Any) -> None:
        pass


def connection() -> tuple[RelayWebSocketProtocol, FakeTransport]:
    config = uvicorn.Config(lambda scope, receive, send: None, ws=RelayWebSocketProtocol, lifespan="off")
    config.load()
    protocol = RelayWebSocketProtocol(config, ServerState(), {})
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


def receive_text(protocol: RelayWebSocketProtocol, text: str) -> None:
    """What uvicorn does with a complete text frame."""
    protocol.curr_msg_data_type = "text"
    protocol.frames = [text.encode()]
    protocol.send_receive_event_to_app()


async def test_messages_reach_the_receiver_in_order_reading_pauses_while_too_many_wait_and_the_end_is_last() -> None:
    protocol, transport = connection()
    got: list[str | bytes | None] = []
    release = asyncio.Event()

    async def receiver(data: str | bytes | None) -> None:
        await release.wait()  # a slow handler: messages pile up behind it
        got.append(data)

    # a message the ASGI receive had queued before the connection was detached goes first
    protocol.queue.put_nowait({"type": "websocket.receive", "text": "m0"})
    protocol.detach(receiver)
    for n in range(1, INBOX_LIMIT + 5):
        receive_text(protocol, f"m{n}")
    assert transport.paused == 1 and transport.resumed == 0  # TCP pushes back instead of the inbox growing
    release.set()
    for _ in range(100):
        if transport.resumed:
            break
        await asyncio.sleep(0)
    assert got == [f"m{n}" for n in range(INBOX_LIMIT + 5)]
    assert transport.resumed == 1
    assert protocol.inbox is None  # no task while nothing waits

    protocol.connection_lost(None)
    await asyncio.sleep(0.01)
    assert got[-1] is None and got.count(None) == 1
    assert protocol.receiver is None


UPGRADE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def test_a_detached_connection_outlives_its_asgi_call_and_closes_with_a_handshake() -> None:
    protocol, transport = connection()
    written: list[bytes] = []
    transport.write = written.append  # type: ignore[method-assign]

    async def receiver(data: str | bytes | None) -> None:
        pass

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        protocol.detach(receiver)

    protocol.app = app
    protocol.data_received(UPGRADE)
    (call,) = protocol.tasks
    await call
    assert written[0].startswith(b"HTTP/1.1 101")
    assert not transport.closed  # the ASGI call returned; the connection stays open
    protocol.close_detached(1009)
    assert written[-1][:4] == bytes([0x88, 2, 0x03, 0xF1])  # a CLOSE frame, code 1009
    assert protocol.close_sent and protocol.close_timer is not None  # closed once the peer answers, or times out
    protocol.close_timer.cancel()
