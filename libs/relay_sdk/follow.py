"""Follow a chat by seq: every message this user may see, once, in order, across reconnects.

    follower = ChatFollower(sock, chat_id)
    await follower.start()             # join + fetch what exists
    ...                                # live `message:new` events are merged as they come
    await sock.reconnect(other_url)    # a dropped connection ...
    await follower.resume()            # ... re-joins and fetches exactly the gap

Seqs are gap-free per chat, but a visitor never sees internal notes, so a jump in seq is not
proof of a loss: on a jump the follower asks `chat:sync` for everything after what it holds and
merges by seq, so nothing is lost and nothing is held twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

from relay_sdk.client import RelaySocket


class ChatFollower:
    def __init__(self, sock: RelaySocket, chat_id: str) -> None:
        self.sock = sock
        self.chat_id = chat_id
        self.by_seq: dict[int, dict[str, Any]] = {}
        self.watermark = 0  # every visible message with seq <= watermark is held
        self.duplicates_dropped = 0
        self.syncs = 0
        self._sync_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        sock.listen("message:new", self._on_message)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [self.by_seq[s] for s in sorted(self.by_seq)]

    async def start(self) -> None:
        await self.sock.join(self.chat_id)
        await self.catch_up()

    async def resume(self) -> None:
        """After a reconnect: join again and fetch everything after the watermark."""
        await self.start()

    async def catch_up(self) -> None:
        async with self._sync_lock:
            self.syncs += 1
            missed = await self.sock.sync(self.chat_id, self.watermark)
            for message in missed:
                self._hold(message)
            # what sync answered is complete up to its last seq; anything held beyond arrived live after
            self.watermark = max([self.watermark, *self.by_seq])
        await self._notify()

    def _hold(self, message: dict[str, Any]) -> bool:
        seq = int(message["seq"])
        if seq in self.by_seq:
            self.duplicates_dropped += 1
            return False
        self.by_seq[seq] = message
        return True

    async def _on_message(self, message: dict[str, Any]) -> None:
        if not isinstance(message, dict) or message.get("chatId") != self.chat_id or "seq" not in message:
            return
        seq = int(message["seq"])
        if not self._hold(message):
            return
        if seq == self.watermark + 1 and not self._sync_lock.locked():
            while self.watermark + 1 in self.by_seq:
                self.watermark += 1
            await self._notify()
        else:
            # a jump: a loss or a note we may not see; ask the server which
            task = asyncio.get_running_loop().create_task(self.catch_up())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_seq(self, seq: int, timeout: float = 10.0) -> None:
        """Until every visible message up to `seq` is held."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.watermark >= seq), timeout)

    async def wait_for_count(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.by_seq) >= count), timeout)
        return self.messages

    def close(self) -> None:
        self.sock.unlisten("message:new", self._on_message)
