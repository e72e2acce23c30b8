"""The AMQP socket written once per event-loop pass, not once per frame.

aiormq's writer task hands every frame (a publish, an ack, a reply) to the socket on its own, so each
becomes one `send` system call and one TCP segment the broker reads on its own: measured at one@500
(bench/reports/ingest.md), that write was the largest single share of the message service's CPU
(~25 % of its samples) and ~11-19 % of a gateway's. Here the frames written during one pass of the
loop are joined and sent in one call at the end of the pass: the same bytes in the same order, one
loop pass later at most.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiormq
from aiormq.connection import TransportFactory
from aiormq.exceptions import AMQPConnectionError
from yarl import URL

# past this many bytes waiting, `drain` sends them at once and waits like a plain StreamWriter
FLUSH_AT_BYTES = 256 * 1024
# frames the tasks of one loop pass may hand to a connection's writer task before they wait for it. aiormq's
# default (10) let a burst of publishes (a round's events, its replies) through at one frame per loop pass
# behind the channel's lock, so every frame went out in a write of its own (measured: 3,820 writes for 4,000
# events published in batches of 200; with 1,024: 20 writes and ~25 % less CPU in the publishing process)
FRAMES_IN_FLIGHT = 1024
aiormq.Connection.FRAME_BUFFER_SIZE = FRAMES_IN_FLIGHT


class CoalescingWriter(asyncio.StreamWriter):
    """A StreamWriter whose `write` buffers until the end of the current loop pass."""

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        protocol: asyncio.StreamReaderProtocol,
        reader: asyncio.StreamReader,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(transport, protocol, reader, loop)
        self._on_loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._pending.append(bytes(data))
        self._pending_bytes += len(data)
        if not self._scheduled:
            self._scheduled = True
            self._on_loop.call_soon(self.flush)

    def writelines(self, data: Any) -> None:
        for chunk in data:
            self.write(chunk)

    def flush(self) -> None:
        """Send what is waiting, in one call."""
        self._scheduled = False
        if not self._pending:
            return
        pending = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        self._pending_bytes = 0
        if not self.transport.is_closing():
            self.transport.write(pending)

    async def drain(self) -> None:
        # the buffer is sent at the end of this pass anyway: wait only when it is big or the socket is full
        if self._pending_bytes >= FLUSH_AT_BYTES:
            self.flush()
        await super().drain()

    def write_eof(self) -> None:
        self.flush()
        super().write_eof()

    def close(self) -> None:
        self.flush()
        super().close()


class CoalescingTCPTransportFactory(TransportFactory):
    """aiormq's plain TCP transport (`asyncio.open_connection`'s steps) with a `CoalescingWriter`; amqps://
    keeps aiormq's own. Not a wrapper around a plain StreamWriter: that one would close the socket when
    it is collected."""

    async def create(self, url: URL, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        kwargs.pop("ssl_context_provider", None)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(
                lambda: protocol, url.host or "localhost", url.port or 5672, **kwargs
            )
        except OSError as exc:
            raise AMQPConnectionError(*exc.args) from exc
        return reader, CoalescingWriter(transport, protocol, reader, loop)
