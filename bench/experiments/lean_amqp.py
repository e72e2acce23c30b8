"""EXPERIMENT, not used by Relay: a lean AMQP 0-9-1 consumer of one exclusive queue, written to measure what the
AMQP client's receive path costs a gateway per event (issue 10, CPU per delivery at 16k/s).

Frames are parsed in `data_received`; a Basic.Deliver, its content header and body become one (tag, body) in a
deque, with no task per message; acks are `basic.ack multiple` frames written directly. No reconnect, no
heartbeats, no failover, no TLS, no dynamic binds: the queue is bound to `#` on the emit exchange, which is all
the fan-out bench publishes. What a production version must add is listed in bench/reports/fanout.md.

Measured 2026-11-30 (stop 19) with `lean_consumer.patch` applied (EventDelivery consumes through this class when
LEAN_CONSUME=1), 200 sockets in one room at 16k deliveries/s, 15-second windows, one run alternating
node, lean, aio-pika, node, aio-pika, lean; gateway CPU µs per delivery (user + sys):
Node 14.88 / 17.91, lean 15.25 / 15.84, aio-pika iterator 20.50 / 18.46 (user: lean 8.4, aio-pika 12.4,
Node 8.7 / 9.8).
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

import pamqp.frame
from pamqp import commands as c

_HEADER = struct.Struct(">BHI")  # frame type, channel, payload size
_TAG = struct.Struct(">Q")
_BASIC_DELIVER = b"\x00\x3c\x00\x3c"  # class 60, method 60


class LeanConsumer(asyncio.Protocol):
    def __init__(self, url: str, queue: str, exchange: str, pattern: str, prefetch: int = 256) -> None:
        parts = urlparse(url)
        self.user, self.password = parts.username or "guest", parts.password or "guest"
        self.vhost = parts.path[1:] or "/"
        self.queue, self.exchange, self.pattern, self.prefetch = queue, exchange, pattern, prefetch
        self.buffer = bytearray()
        self.reply: asyncio.Future[Any] | None = None
        self.inbox: deque[tuple[int, bytes]] = deque()
        self.wake: asyncio.Future[None] | None = None
        self.tag = 0
        self.size = 0
        self.body: list[bytes] = []
        self.expect = "method"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.reply = asyncio.get_running_loop().create_future()  # answered by Connection.OpenOk
        self.transport.write(b"AMQP\x00\x00\x09\x01")

    def send(self, method: Any, channel: int = 0) -> None:
        self.transport.write(pamqp.frame.marshal(method, channel))

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        pos, end_of_data = 0, len(buf)
        while end_of_data - pos >= 7:
            kind, _channel, size = _HEADER.unpack_from(buf, pos)
            end = pos + 7 + size + 1
            if end > end_of_data:
                break
            if kind == 1 and self.expect == "method" and buf[pos + 7 : pos + 11] == _BASIC_DELIVER:
                tag_at = pos + 12 + buf[pos + 11]  # after the consumer tag (a short string)
                (self.tag,) = _TAG.unpack_from(buf, tag_at)
                self.expect = "header"
            elif kind == 2 and self.expect == "header":
                (self.size,) = _TAG.unpack_from(buf, pos + 11)
                self.body = []
                self.expect = "body"
                if self.size == 0:
                    self._complete(b"")
            elif kind == 3 and self.expect == "body":
                self.body.append(bytes(buf[pos + 7 : end - 1]))
                if sum(map(len, self.body)) >= self.size:
                    self._complete(self.body[0] if len(self.body) == 1 else b"".join(self.body))
            elif kind != 8:  # 8: heartbeat
                _, _, frame = pamqp.frame.unmarshal(bytes(buf[pos:end]))
                self._on_frame(frame)
            pos = end
        del buf[:pos]

    def _complete(self, body: bytes) -> None:
        self.expect = "method"
        self.inbox.append((self.tag, body))
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    def _on_frame(self, frame: Any) -> None:
        if isinstance(frame, c.Connection.Start):
            self.send(c.Connection.StartOk(mechanism="PLAIN", response=f"\x00{self.user}\x00{self.password}"))
        elif isinstance(frame, c.Connection.Tune):
            self.send(c.Connection.TuneOk(channel_max=frame.channel_max, frame_max=frame.frame_max, heartbeat=0))
            self.send(c.Connection.Open(virtual_host=self.vhost))
        else:
            reply, self.reply = self.reply, None
            if reply is not None and not reply.done():
                reply.set_result(frame)

    async def call(self, method: Any) -> Any:
        self.reply = asyncio.get_running_loop().create_future()
        self.send(method, 1)
        return await self.reply

    async def setup(self) -> None:
        assert self.reply is not None
        await self.reply  # Connection.OpenOk
        await self.call(c.Channel.Open())
        await self.call(c.Queue.Declare(queue=self.queue, exclusive=True, auto_delete=True))
        await self.call(c.Queue.Bind(queue=self.queue, exchange=self.exchange, routing_key=self.pattern))
        await self.call(c.Basic.Qos(prefetch_count=self.prefetch))
        await self.call(c.Basic.Consume(queue=self.queue, consumer_tag="lean"))

    def ack(self, tag: int) -> None:
        self.send(c.Basic.Ack(delivery_tag=tag, multiple=True), 1)

    async def messages(self) -> AsyncIterator[tuple[int, bytes]]:
        loop = asyncio.get_running_loop()
        while True:
            while self.inbox:
                yield self.inbox.popleft()
            self.wake = loop.create_future()
            await self.wake
            self.wake = None


async def start(url: str, queue: str, exchange: str, pattern: str) -> LeanConsumer:
    parts = urlparse(url)
    loop = asyncio.get_running_loop()
    _, consumer = await loop.create_connection(
        lambda: LeanConsumer(url, queue, exchange, pattern), parts.hostname, parts.port or 5672
    )
    await consumer.setup()
    return consumer
