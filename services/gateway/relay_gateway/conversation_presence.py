"""Who has a socket in a conversation's room, on any replica (seed-003 `participantes_conectados`).

One Redis sorted set per (tenant, conversation): member `sid|userId`, score = when this replica
last vouched for it. Each replica refreshes its own sockets' entries, so a replica that dies
without cleaning up stops vouching and its entries age out after `STALE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict

from redis.asyncio import Redis
from relay_log import get_logger

log = get_logger(__name__)

REFRESH_SECONDS = 10.0
STALE_SECONDS = 35.0


class ConversationPresence:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:mensajeria:online:"
        self._local: defaultdict[str, dict[str, str]] = defaultdict(dict)  # sid -> {key: member}
        self._refresher: asyncio.Task[None] | None = None

    def _key(self, tenant: str, conversation_id: str) -> str:
        return f"{self._prefix}{tenant}|{conversation_id}"

    async def join(self, tenant: str, conversation_id: str, user_id: str, sid: str) -> None:
        key, member = self._key(tenant, conversation_id), f"{sid}|{user_id}"
        self._local[sid][key] = member
        await self._vouch({key: [member]})
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_forever(), name="relay-mensajeria-presence")

    async def leave(self, tenant: str, conversation_id: str, sid: str) -> None:
        key = self._key(tenant, conversation_id)
        member = self._local.get(sid, {}).pop(key, None)
        if member is not None:
            await self._redis.zrem(key, member)

    async def leave_all(self, sid: str) -> None:
        for key, member in self._local.pop(sid, {}).items():
            await self._redis.zrem(key, member)

    async def connected(self, tenant: str, conversation_id: str) -> list[str]:
        """User ids with a live socket in the conversation, each once, sorted."""
        key = self._key(tenant, conversation_id)
        now = time.time()
        await self._redis.zremrangebyscore(key, "-inf", now - STALE_SECONDS)
        members = await self._redis.zrangebyscore(key, now - STALE_SECONDS, "+inf")
        return sorted({str(m).split("|", 1)[1] for m in members if "|" in str(m)})

    def joined(self, sid: str, tenant: str, conversation_id: str) -> bool:
        return self._key(tenant, conversation_id) in self._local.get(sid, {})

    async def _vouch(self, entries: dict[str, list[str]]) -> None:
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, members in entries.items():
                pipe.zadd(key, dict.fromkeys(members, now))
                pipe.expire(key, int(STALE_SECONDS * 2))
            await pipe.execute()

    async def _refresh_forever(self) -> None:
        while self._local:
            await asyncio.sleep(REFRESH_SECONDS)
            entries: defaultdict[str, list[str]] = defaultdict(list)
            for held in list(self._local.values()):
                for key, member in held.items():
                    entries[key].append(member)
            if entries:
                try:
                    await self._vouch(entries)
                except Exception:
                    log.warning("mensajeria.presence_refresh_failed")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
