"""Clients that keep going through outages, for the tests that restart or kill parts under traffic:
a follower that reconnects like socket.io-client and fetches its gap, and a poster that retries a
send with the same clientMessageId until it is accepted."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
from relay_devstack import Stack
from relay_sdk import RelayClient, RelaySocket
from relay_sdk.client import RelayError
from relay_sdk.follow import ChatFollower


class Roamer:
    """An agent following the chat who, like socket.io-client, reconnects when its transport closes
    (to another replica) and then fetches the gap."""

    def __init__(self, stack: Stack, token: str, chat_id: str, replica: int) -> None:
        self.stack = stack
        self.replica = self.first_replica = replica
        self.sock = RelaySocket(stack.gateway_urls[replica], auth={"token": token})
        self.follower = ChatFollower(self.sock, chat_id)
        self.connection = 0
        self.live: list[tuple[int, int]] = []  # (connection number, seq) of every live message:new
        self.dropped: list[tuple[int, float]] = []  # (replica, when) of every closed transport
        self.sock.listen("message:new", lambda m: self.live.append((self.connection, int(m["seq"]))))
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        await self.sock.connect()
        await self.follower.start()
        self._task = asyncio.create_task(self._roam())

    async def _roam(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(0.02)
            if self.sock.connected:
                continue
            self.dropped.append((self.replica, time.monotonic()))
            replicas = itertools.islice(itertools.cycle(range(len(self.stack.gateway_urls))), self.replica + 1, None)
            for replica in replicas:
                if self._stop.is_set():
                    return
                try:
                    self.connection += 1
                    await self.sock.reconnect(self.stack.gateway_urls[replica], timeout=5)
                    await self.follower.resume()
                    self.replica = replica
                    break
                except Exception:
                    await asyncio.sleep(0.1)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        self.follower.close()
        await self.sock.close()


class Poster:
    """Posts numbered messages; a failed attempt is retried with the same clientMessageId on the next
    replica until it is accepted (201)."""

    def __init__(self, stack: Stack, token: str, chat_id: str, name: str) -> None:
        self.clients = [RelayClient(url, token=token) for url in stack.gateway_urls]
        self.chat_id = chat_id
        self.name = name
        self.accepted: list[str] = []
        self.retries = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._post())

    def check(self) -> None:
        """Raise what stopped the poster early (a refusal other than UNAVAILABLE), if anything did."""
        if self._task is not None and self._task.done() and not self._stop.is_set():
            self._task.result()

    async def _post(self) -> None:
        replicas = itertools.cycle(range(len(self.clients)))
        for n in itertools.count():
            if self._stop.is_set():
                return
            content = f"{self.name}-{n}"
            while not self._stop.is_set():  # a send never accepted is not counted: stopping must not wait for it
                client = self.clients[next(replicas)]
                try:
                    body = {"chatId": self.chat_id, "content": content, "clientMessageId": content}
                    await client.post("/v2/messages", body, expect=201)
                    self.accepted.append(content)
                    break
                except (RelayError, httpx.HTTPError) as exc:
                    if isinstance(exc, RelayError) and exc.status < 500:
                        raise
                    self.retries += 1
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        for client in self.clients:
            await client.close()


async def all_history(client: RelayClient, chat_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        page = await client.history(chat_id, afterSeq=messages[-1]["seq"] if messages else 0, limit=100)
        messages.extend(page["messages"])
        if not page["hasMore"]:
            return messages
