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


class RelaySocketError(Exception):
    """A socket event the server refused (its ack said `success: false`)."""

    def __init__(self, event: str, ack: Any) -> None:
        error = ack.get("error", {}) if isinstance(ack, dict) else {}
        super().__init__(f"{event}: {error.get('code')}: {error.get('message')}")
        self.event = event
        self.code = error.get("code")
        self.ack = ack


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
        self.headers = dict(headers or {})  # python-socketio empties the dict it is given: keep the caller's
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: defaultdict[str, list[Any]] = defaultdict(list)
        self.sequence: list[tuple[str, Any]] = []  # every event in arrival order, across names
        self._changed = asyncio.Condition()
        self._listeners: defaultdict[str, list[Callable[[Any], Any]]] = defaultdict(list)
        self.sio.on("*", self._record, namespace=namespace)

    async def _record(self, event: str, *args: Any) -> None:
        payload = args[0] if len(args) == 1 else list(args)
        async with self._changed:
            self.events[event].append(payload)
            self.sequence.append((event, payload))
            self._changed.notify_all()
        for listener in list(self._listeners[event]):
            result = listener(payload)
            if asyncio.iscoroutine(result):
                await result

    def listen(self, event: str, callback: Callable[[Any], Any]) -> None:
        """Call `callback(payload)` (sync or async) for every `event` received from now on."""
        self._listeners[event].append(callback)

    def unlisten(self, event: str, callback: Callable[[Any], Any]) -> None:
        if callback in self._listeners[event]:
            self._listeners[event].remove(callback)

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected)

    async def reconnect(self, url: str | None = None, timeout: float = 10.0) -> RelaySocket:
        """Drop this connection (if any) and connect again, to `url` (another replica) if given."""
        await self.close()
        listeners = self._listeners
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._record, namespace=self.namespace)
        self._listeners = listeners
        if url is not None:
            self.url = url
        return await self.connect(timeout)

    async def join(self, chat_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """`chat:join`; raises RelaySocketError when refused."""
        return await self.checked("chat:join", {"chatId": chat_id}, timeout=timeout)

    async def leave(self, chat_id: str, timeout: float = 10.0) -> dict[str, Any]:
        return await self.checked("chat:leave", {"chatId": chat_id}, timeout=timeout)

    async def sync(self, chat_id: str, after_seq: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Every message after `after_seq` this user may see (pages through `chat:sync`)."""
        messages: list[dict[str, Any]] = []
        while True:
            ack = await self.checked("chat:sync", {"chatId": chat_id, "afterSeq": after_seq}, timeout=timeout)
            messages.extend(ack["messages"])
            after_seq = ack["lastSeq"]
            if not ack["hasMore"] or not ack["messages"]:
                return messages

    async def checked(self, event: str, data: Any = None, timeout: float = 10.0) -> dict[str, Any]:
        """Emit with an ack; the ack when it says success, else RelaySocketError."""
        ack = await self.call(event, data, timeout=timeout)
        if not isinstance(ack, dict) or not ack.get("success"):
            raise RelaySocketError(event, ack)
        return ack

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
        sid: str | None = self.sio.get_sid(self.namespace)
        return sid

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
        # idle connections are dropped before the server's keep-alive (uvicorn: 5 s) closes them under a request
        limits = httpx.Limits(keepalive_expiry=2.0)
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, limits=limits)

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

    async def open_chat(self, subject: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.post("/v2/chats", {"subject": subject} if subject else {}, expect=201)
        return result

    async def chats(self, **params: Any) -> list[dict[str, Any]]:
        result: dict[str, Any] = await self.get("/v2/chats", params=params)
        return list(result["chats"])

    async def chat(self, chat_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/v2/chats/{chat_id}")
        return result

    async def mark_read(self, chat_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(f"/v2/chats/{chat_id}/read")
        return result

    async def close_chat(self, chat_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(f"/v2/chats/{chat_id}/close")
        return result

    async def send(self, chat_id: str, content: str, **fields: Any) -> dict[str, Any]:
        """POST /v2/messages (seed-001 sends over HTTP); `fields`: type, isInternal, attachment, clientMessageId."""
        result: dict[str, Any] = await self.post("/v2/messages", {"chatId": chat_id, "content": content, **fields})
        return result

    async def upload(self, chat_id: str, file_name: str, data: bytes, mime_type: str) -> dict[str, Any]:
        """POST /v2/files/upload (multipart); answers `{fileId, url, fileName, fileSize, mimeType}`."""
        response = await self.http.post(
            "/v2/files/upload",
            files={"file": (file_name, data, mime_type)},
            data={"chatId": chat_id},
            headers=self._headers(),
        )
        body: Any = response.json() if response.content else None
        if response.status_code != 201:
            raise RelayError(response.status_code, body)
        result: dict[str, Any] = body
        return result

    async def download(self, url: str) -> httpx.Response:
        """GET an attachment URL; raises RelayError unless 200."""
        response = await self.http.get(url, headers=self._headers())
        if response.status_code != 200:
            raise RelayError(response.status_code, response.json() if response.content else None)
        return response

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> RelayClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
