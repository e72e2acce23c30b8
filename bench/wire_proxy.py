"""A TCP proxy in front of a MongoDB-wire server that counts the commands passing through it.

Counting on the wire sees every command a service sends (driver monitoring included) without
touching the service: each OP_MSG's first body section is the command document, whose first key
names the command and whose value names the collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter

import bson

OP_MSG = 2013
# the driver's own connection and topology upkeep, not work a request caused
MONITORING = frozenset({"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo", "buildinfo"})


def command_of(body: bytes) -> tuple[str, str, int]:
    """(command, collection, documents) of an OP_MSG body: documents counts what a write carries."""
    (flags,) = struct.unpack_from("<I", body, 0)
    end = len(body) - (4 if flags & 1 else 0)  # checksumPresent: a CRC-32C closes the message
    offset, command, collection, documents = 4, "?", "", 0
    while offset < end:
        kind = body[offset]
        offset += 1
        (size,) = struct.unpack_from("<i", body, offset)
        if kind == 0:  # the command document
            doc = bson.decode(body[offset : offset + size])
            command = next(iter(doc), "?")
            collection = doc[command] if isinstance(doc.get(command), str) else ""
            documents += sum(len(doc[f]) for f in ("documents", "updates", "deletes") if isinstance(doc.get(f), list))
        else:  # kind 1: a document sequence (the inserts or updates of a bulk write)
            cursor = body.index(b"\0", offset + 4) + 1
            while cursor < offset + size:
                cursor += struct.unpack_from("<i", body, cursor)[0]
                documents += 1
        offset += size
    return command, collection, documents


class CountingMongoProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.commands: Counter[tuple[str, str]] = Counter()
        self.documents: Counter[tuple[str, str]] = Counter()
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def snapshot(self) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
        return Counter(self.commands), Counter(self.documents)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, count=True)),
            asyncio.create_task(self._pump(up_reader, writer, count=False)),
        ]
        self._pumps.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
            self._pumps.discard(pump)
        for w in (writer, up_writer):
            w.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, count: bool) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                header = await src.readexactly(16)
                length, _, _, opcode = struct.unpack("<iiii", header)
                body = await src.readexactly(length - 16)
                if count and opcode == OP_MSG:
                    command, collection, documents = command_of(body)
                    self.commands[(command, collection)] += 1
                    self.documents[(command, collection)] += documents
                dst.write(header + body)
                await dst.drain()

    async def close(self) -> None:
        for pump in list(self._pumps):
            pump.cancel()
        if self._server is not None:
            self._server.close()
