"""Relay's Python client SDK.

client = RelayClient("http://127.0.0.1:3000", token=token)
chat = await client.post("/v2/chats", {"subject": "help"})
async with client.socket() as sock:
    await sock.call("chat:join", {"chatId": chat["chatId"]})
    await client.post("/v2/messages", {"chatId": chat["chatId"], "content": "hola"})
    message = await sock.wait_for("message:new")
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import socketio


class RelayError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"{status} {error.get('code')}: {error.get('message')}")
        self.status = status
        self.code = error.get("code")
        self.body = body


class RelaySocket:
    """One Socket.IO connection that records every event it receives, in arrival order."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "/",
        auth: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        transports: list[str] | None = None,
    ) -> None:
        self.url = url
        self.namespace = namespace
        self.auth = auth
        self.headers = headers or {}
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: defaultdict[str, list[Any]] = defaultdict(list)
        self.sequence: list[tuple[str, Any]] = []  # every event in arrival order, across names
        self._changed = asyncio.Condition()
        self.sio.on("*", self._record, namespace=namespace)

    async def _record(self, event: str, *args: Any) -> None:
        async with self._changed:
            payload = args[0] if len(args) == 1 else list(args)
            self.events[event].append(payload)
            self.sequence.append((event, payload))
            self._changed.notify_all()

    async def connect(self, timeout: float = 10.0) -> RelaySocket:
        await self.sio.connect(
            self.url,
            namespaces=[self.namespace],
            auth=self.auth,
            headers=self.headers,
            transports=self.transports,
            wait_timeout=timeout,
        )
        return self

    @property
    def sid(self) -> str | None:
        return self.sio.get_sid(self.namespace)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data, namespace=self.namespace)

    async def call(self, event: str, data: Any = None, timeout: float = 10.0) -> Any:
        """Emit with an ack and return the ack's payload."""
        return await self.sio.call(event, data, namespace=self.namespace, timeout=timeout)

    async def wait_for(
        self, event: str, predicate: Callable[[Any], bool] | None = None, timeout: float = 10.0, count: int = 1
    ) -> Any:
        """The first (or `count`-th) received `event` matching `predicate`; waits until it arrives."""

        def matches() -> list[Any]:
            return [e for e in self.events[event] if predicate is None or predicate(e)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(matches()) >= count), timeout)
            found = matches()
        return found[count - 1] if count == 1 else found[:count]

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `condition()` holds; it is checked again after every received event."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    def received(self, event: str) -> list[Any]:
        return list(self.events[event])

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()

    async def __aenter__(self) -> RelaySocket:
        return await self.connect()

    async def __aexit__(self, *_: object) -> None:
        await self.close()


class RelayClient:
    """REST calls against one gateway, authenticated with a Bearer token (or cookies it was given)."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        expect: int | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        response = await self.http.request(method, path, json=body, headers=self._headers(headers), **kwargs)
        data = response.json() if response.content else None
        if expect is not None and response.status_code != expect:
            raise RelayError(response.status_code, data)
        if expect is None and response.status_code >= 400:
            raise RelayError(response.status_code, data)
        return data

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return await self.request("POST", path, body, **kwargs)

    def socket(self, namespace: str = "/", **kwargs: Any) -> RelaySocket:
        auth = {"token": self.token} if self.token else None
        return RelaySocket(self.base_url, namespace=namespace, auth=auth, **kwargs)

    async def history(self, chat_id: str, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/v2/messages/chat/{chat_id}", params=params)
        return result

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> RelayClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
