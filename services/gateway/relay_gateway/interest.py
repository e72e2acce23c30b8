"""Which events this replica needs: one binding per target with local sockets, refcounted.

A socket joining `chat:c42` adds interest in `acme.conv.c42.#`; the first local socket binds the
replica's event queue, the last one to leave unbinds it, so a replica's traffic grows with what its
own sockets watch, not with the number of replicas.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable

Bind = Callable[[str], Awaitable[None]]


class Interest:
    def __init__(self, bind: Bind, unbind: Bind) -> None:
        self._bind = bind
        self._unbind = unbind
        self._holders: defaultdict[str, set[str]] = defaultdict(set)
        self._by_sid: defaultdict[str, set[str]] = defaultdict(set)
        self._lock = asyncio.Lock()

    async def add(self, sid: str, pattern: str) -> None:
        async with self._lock:
            if pattern in self._by_sid[sid]:
                return
            first = not self._holders[pattern]
            if first:
                # bind before recording, so the socket is only "in" once events can reach it
                await self._bind(pattern)
            self._holders[pattern].add(sid)
            self._by_sid[sid].add(pattern)

    async def remove(self, sid: str, pattern: str) -> None:
        async with self._lock:
            await self._drop(sid, pattern)

    async def remove_all(self, sid: str) -> None:
        async with self._lock:
            for pattern in list(self._by_sid.get(sid, ())):
                await self._drop(sid, pattern)
            self._by_sid.pop(sid, None)

    async def _drop(self, sid: str, pattern: str) -> None:
        self._by_sid[sid].discard(pattern)
        holders = self._holders.get(pattern)
        if holders is None:
            return
        holders.discard(sid)
        if not holders:
            del self._holders[pattern]
            try:
                await self._unbind(pattern)
            except Exception:
                # a stale binding only costs traffic; the exclusive queue dies with the replica
                pass

    def patterns(self) -> list[str]:
        return sorted(self._holders)
