"""A raw Engine.IO v4 / Socket.IO v5 WebSocket client: sends frames exactly as given, so tests can
send what no well-behaved client library would (truncated JSON, bogus attachments, stray packets)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


class RawSocket:
    def __init__(
        self, base_url: str, namespace: str = "/", auth: dict[str, Any] | None = None, origin: str | None = None
    ) -> None:
        self.url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.namespace = namespace
        self.auth = auth
        self.origin = origin
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.received: list[str] = []
        self._arrived = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._next_ack = 1

    @property
    def prefix(self) -> str:
        return "" if self.namespace == "/" else f"{self.namespace},"

    async def connect(self, timeout: float = 10.0) -> dict[str, Any]:
        """Open the transport and the namespace; returns the CONNECT answer's data (or raises on refusal)."""
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(
            self.url, timeout=aiohttp.ClientWSTimeout(ws_close=timeout), origin=self.origin
        )
        self._reader = asyncio.create_task(self._read())
        await self.wait_frame(lambda f: f.startswith("0{"), timeout)
        await self.send("40" + self.prefix + (json.dumps(self.auth) if self.auth else ""))
        answer = await self.wait_frame(lambda f: f.startswith("40" + self.prefix) or f.startswith("44"), timeout)
        if answer.startswith("44"):
            raise ConnectionRefusedError(answer)
        return dict(json.loads(answer[len("40" + self.prefix) :]))

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "2":  # Engine.IO ping: answer, or the server drops us
                    await self.ws.send_str("3")
                    continue
                async with self._arrived:
                    self.received.append(msg.data)
                    self._arrived.notify_all()
        async with self._arrived:
            self._arrived.notify_all()

    @property
    def open(self) -> bool:
        return self.ws is not None and not self.ws.closed

    async def send(self, frame: str | bytes) -> None:
        assert self.ws is not None
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def wait_frame(self, match: Any, timeout: float = 10.0, start: int = 0) -> str:
        async def found() -> str:
            async with self._arrived:
                while True:
                    for frame in self.received[start:]:
                        if match(frame):
                            return frame
                    if not self.open:
                        raise ConnectionError(f"closed while waiting; got {self.received[-5:]}")
                    await self._arrived.wait()

        return await asyncio.wait_for(found(), timeout)

    def events(self, name: str, start: int = 0) -> list[Any]:
        """Payloads of Socket.IO EVENT packets named `name` on this namespace received so far."""
        out = []
        head = "42" + self.prefix
        for frame in self.received[start:]:
            if frame.startswith(head) and not frame[len(head) : len(head) + 1].isdigit():
                data = json.loads(frame[len(head) :])
                if data and data[0] == name:
                    out.append(data[1] if len(data) > 1 else None)
        return out

    async def wait_event(self, name: str, timeout: float = 10.0, start: int = 0) -> Any:
        head = "42" + self.prefix
        frame = await self.wait_frame(lambda f: f.startswith(head + '["' + name + '"'), timeout, start)
        return json.loads(frame[len(head) :])[1]

    async def call(self, event: str, data: Any = None, timeout: float = 10.0) -> Any:
        """Emit with an ack id and return the ack's first argument."""
        ack_id = self._next_ack
        self._next_ack += 1
        args = [event] if data is None else [event, data]
        await self.send("42" + self.prefix + str(ack_id) + json.dumps(args))
        head = "43" + self.prefix + str(ack_id)
        frame = await self.wait_frame(lambda f: f.startswith(head + "["), timeout)
        return json.loads(frame[len(head) :])[0]

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()

    async def __aenter__(self) -> RawSocket:
        await self.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
