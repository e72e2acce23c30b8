"""A TCP proxy in front of the real RabbitMQ that cuts connections the way a lost node or network does."""

from __future__ import annotations

import asyncio
import contextlib

from yarl import URL


class LingeringProxy:
    """TCP proxy to the broker. `strand` cuts every client off while keeping its broker side open (read and
    discarded); `release` closes those broker sides at last; `freeze` lets the current connections carry
    nothing more either way while both ends stay open (a hung node or a silent network)."""

    def __init__(self, upstream: URL) -> None:
        self._upstream = (upstream.host or "127.0.0.1", upstream.port or 5672)
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._stranded: list[asyncio.StreamWriter] = []
        self._frozen: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection(*self._upstream)
        self._pairs.append((client_w, broker_w))
        for reader, writer in ((client_r, broker_w), (broker_r, client_w)):
            task = asyncio.create_task(self._pump(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if writer in self._stranded or writer in self._frozen or writer.is_closing():
                    continue  # a stranded broker side: whatever the client still sent goes nowhere
                writer.write(data)
                await writer.drain()

    def strand(self) -> None:
        for client_w, broker_w in self._pairs:
            self._stranded.append(broker_w)
            client_w.transport.abort()
        self._pairs.clear()

    def freeze(self) -> None:
        for client_w, broker_w in self._pairs:
            self._frozen.update((client_w, broker_w))

    def release(self) -> None:
        for broker_w in self._stranded:
            broker_w.transport.abort()
        self._stranded.clear()

    async def close(self) -> None:
        self.strand()
        self.release()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
