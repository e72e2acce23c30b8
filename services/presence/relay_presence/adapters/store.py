"""Presence state in Redis: one JSON document per tenant+user, updated under a per-user lock.

Several presence instances may consume commands concurrently, and one gateway's connect and
disconnect of a socket may be handled out of order; the lock serialises one user's updates and a
short-lived tombstone remembers sockets that already went away, so a late connect is ignored.

Indexes kept beside the documents:
  online:<tenant>   set of users counted as active (online/away, incl. reconnect grace)
  replica:<key>     set of `tenant␟user␟sid` living on that gateway incarnation (for reaping)
  replicas          hash incarnation → last heartbeat (epoch seconds)
  boots             hash replica id → its current incarnation
  pending           zset `tenant␟user` → when to announce offline
  activity          zset `tenant␟user` → last activity of online users (idle → away)
  convs:<tenant>    hash conversation → sockets joined to it
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from relay_contracts.presence import liveness_key

from relay_presence.domain import OFFLINE, ONLINE, UserPresence

SEP = "\x1f"
LOCK_MS = 5000
TOMBSTONE_SECONDS = 600
OFFLINE_DOC_SECONDS = 30 * 24 * 3600

# one socket fewer in a conversation; the field goes when none is left
_DECREMENT = """
local n = redis.call('hincrby', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('hdel', KEYS[1], ARGV[1]) end
return n
"""
# each lock still held with its token (KEYS[i] ↔ ARGV[i]) is let go
_RELEASE = """
local n = 0
for i, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[i] then n = n + redis.call('del', key) end
end
return n
"""


@dataclass(frozen=True)
class Snapshot:
    """What a loaded document held, so `save` updates only the indexes that changed."""

    conversations: dict[str, list[str]]
    replicas: dict[str, str]


@dataclass(frozen=True)
class Held:
    """One user's presence read under their lock, taken for a round of updates (`lock_round`)."""

    state: UserPresence
    snapshot: Snapshot
    lock: tuple[str, str]  # key, token


def member(tenant: str, user_id: str, sid: str | None = None) -> str:
    return SEP.join((tenant, user_id) if sid is None else (tenant, user_id, sid))


class PresenceStore:
    def __init__(self, redis: Redis, instance: str) -> None:
        self.redis = redis
        self.p = f"{instance}:presence"
        self.liveness = liveness_key(instance)

    def _lock_key(self, tenant: str, user_id: str) -> str:
        return f"{self.p}:lock:{member(tenant, user_id)}"

    def _gone_key(self, sid: str) -> str:
        """A socket's tombstone: it went away, so a connect report of it arriving late is ignored."""
        return f"{self.p}:gone:{sid}"

    def _user_key(self, tenant: str, user_id: str) -> str:
        return f"{self.p}:user:{tenant}{SEP}{user_id}"

    def online_key(self, tenant: str) -> str:
        return f"{self.p}:online:{tenant}"

    def replica_key(self, incarnation: str) -> str:
        return f"{self.p}:replica:{incarnation}"

    @asynccontextmanager
    async def locked(
        self, tenant: str, user_id: str, timeout: float = 5.0
    ) -> AsyncIterator[tuple[UserPresence, Snapshot]]:
        """One user's presence under their lock, read in the same round trip that takes it; `save` it inside."""
        key, token = self._lock_key(tenant, user_id), uuid.uuid4().hex
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(key, token, nx=True, px=LOCK_MS)
            pipe.get(self._user_key(tenant, user_id))
            taken, raw = await pipe.execute()
            if taken:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"presence lock {member(tenant, user_id)} busy")
            await asyncio.sleep(0.005)
        try:
            yield self._state(tenant, user_id, raw)
        finally:
            await self.release([(key, token)])

    async def lock_round(
        self,
        users: list[tuple[str, str]],
        buried: list[str],
        sids: list[str],
        incarnations: list[str],
        now: float,
    ) -> tuple[dict[tuple[str, str], Held], set[str]]:
        """A round of reports in one round trip: tombstones for the sockets that went away (`buried`, before the
        locks, as `bury`), each user's lock taken if it is free (their document read with it; a busy one is
        left out of the answer), which of `sids` already went away (read after the locks: a disconnect that
        buries its socket later then waits for the lock), and each replica known from its first socket
        (`admit`). `release` the held locks when done."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in buried:
            pipe.set(self._gone_key(sid), "1", ex=TOMBSTONE_SECONDS)
        locks = []
        for tenant, user_id in users:
            locks.append((self._lock_key(tenant, user_id), uuid.uuid4().hex))
            pipe.set(locks[-1][0], locks[-1][1], nx=True, px=LOCK_MS)
            pipe.get(self._user_key(tenant, user_id))
        for sid in sids:
            pipe.exists(self._gone_key(sid))
        for incarnation in incarnations:
            pipe.hsetnx(self.liveness, incarnation, now)
        answers = (await pipe.execute())[len(buried) :]
        held = {}
        for i, (tenant, user_id) in enumerate(users):
            taken, raw = answers[2 * i], answers[2 * i + 1]
            if taken:
                held[(tenant, user_id)] = Held(*self._state(tenant, user_id, raw), locks[i])
        tombstones = answers[2 * len(users) : 2 * len(users) + len(sids)]
        return held, {sid for sid, gone in zip(sids, tombstones, strict=True) if gone}

    async def release(self, locks: list[tuple[str, str]]) -> None:
        """Let go of locks (key, token) still held with their token, in one round trip."""
        if locks:
            await self.redis.eval(_RELEASE, len(locks), *(k for k, _ in locks), *(t for _, t in locks))

    async def load(self, tenant: str, user_id: str) -> tuple[UserPresence, Snapshot]:
        """One user's presence, unlocked (read only)."""
        raw = cast(str | None, await self.redis.get(self._user_key(tenant, user_id)))
        return self._state(tenant, user_id, raw)

    def _state(self, tenant: str, user_id: str, raw: str | None) -> tuple[UserPresence, Snapshot]:
        state = UserPresence.from_doc(json.loads(raw)) if raw else UserPresence(tenant, user_id)
        return state, Snapshot(
            {sid: list(s.conversations) for sid, s in state.sockets.items()},
            {sid: s.replica for sid, s in state.sockets.items()},
        )

    async def save(self, state: UserPresence, snapshot: Snapshot) -> int:
        """Store one user's presence and its indexes; returns the tenant's active users after it."""
        return (await self.save_many([(state, snapshot)]))[0]

    async def save_many(self, saves: list[tuple[UserPresence, Snapshot]]) -> list[int]:
        """Store several users' presence in one transaction, in this order; returns, for each, the tenant's
        active users right after their own save (what announcing them one by one would have said)."""
        pipe = self.redis.pipeline(transaction=True)
        ends = []
        for state, snapshot in saves:
            self._queue_save(pipe, state, snapshot)
            ends.append(len(pipe))
        answers = await pipe.execute()
        return [int(answers[end - 1]) for end in ends]

    def _queue_save(self, pipe: Pipeline, state: UserPresence, snapshot: Snapshot) -> None:
        before, before_replicas = snapshot.conversations, snapshot.replicas
        tenant, uid = state.tenant, state.user_id
        who = member(tenant, uid)
        doc_key = self._user_key(tenant, uid)
        pipe.set(doc_key, json.dumps(state.to_doc()))
        if state.status == OFFLINE and not state.sockets:
            pipe.expire(doc_key, OFFLINE_DOC_SECONDS)
        if state.announced:
            pipe.sadd(self.online_key(tenant), uid)
        else:
            pipe.srem(self.online_key(tenant), uid)
        if state.offline_at is not None:
            pipe.zadd(f"{self.p}:pending", {who: state.offline_at})
        else:
            pipe.zrem(f"{self.p}:pending", who)
        if state.status == ONLINE:
            pipe.zadd(f"{self.p}:activity", {who: state.last_activity})
        else:
            pipe.zrem(f"{self.p}:activity", who)
        for sid, replica in before_replicas.items():
            if sid not in state.sockets:
                pipe.srem(self.replica_key(replica), member(tenant, uid, sid))
        for sid, socket in state.sockets.items():
            # every socket, not only new ones: a reap racing a connect may have dropped the replica's set
            # while the socket stayed in the user's document, and a resync must be able to put it back
            pipe.sadd(self.replica_key(socket.replica), member(tenant, uid, sid))
        convs = f"{self.p}:convs:{tenant}"
        after = {sid: s.conversations for sid, s in state.sockets.items()}
        for sid in set(before) | set(after):
            old, new = set(before.get(sid, [])), set(after.get(sid, []))
            for conv in new - old:
                pipe.hincrby(convs, conv, 1)
            for conv in old - new:
                pipe.eval(_DECREMENT, 1, convs, conv)
        pipe.scard(self.online_key(tenant))  # in the same round trip: the count the announcement carries

    # tombstones: a socket that went away before its connect was handled
    async def bury(self, sid: str) -> None:
        await self.redis.set(self._gone_key(sid), "1", ex=TOMBSTONE_SECONDS)

    async def buried(self, sid: str) -> bool:
        return bool(await self.redis.exists(self._gone_key(sid)))

    # replicas
    async def beat(self, incarnation: str, replica_id: str, now: float) -> str | None:
        """Record a heartbeat; returns the previous incarnation of this replica id, if it changed."""
        previous = cast(str | None, await self.redis.hget(f"{self.p}:boots", replica_id))
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.liveness, incarnation, now)
        pipe.hset(f"{self.p}:boots", replica_id, incarnation)
        await pipe.execute()
        return previous if previous and previous != incarnation else None

    async def admit(self, sid: str, incarnation: str, now: float) -> bool:
        """A connect report, in one round trip: False when the socket already went away (tombstone); else
        know its replica from its first socket, so it is reaped even if it dies before a heartbeat."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(self._gone_key(sid))
        pipe.hsetnx(self.liveness, incarnation, now)
        gone, _ = await pipe.execute()
        return not gone

    async def replicas(self) -> dict[str, float]:
        return {k: float(v) for k, v in cast(dict[str, str], await self.redis.hgetall(self.liveness)).items()}

    async def replica_sockets(self, incarnation: str) -> list[tuple[str, str, str]]:
        members = cast(set[str], await self.redis.smembers(self.replica_key(incarnation)))
        return [tuple(m.split(SEP, 2)) for m in members]  # type: ignore[misc]

    async def socket_age(self, tenant: str, user_id: str, sid: str, now: float) -> float:
        state, _ = await self.load(tenant, user_id)
        socket = state.sockets.get(sid)
        return now - socket.connected_at if socket else float("inf")

    async def forget_replica(self, incarnation: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.liveness, incarnation)
        pipe.delete(self.replica_key(incarnation))
        await pipe.execute()

    # sweeps
    async def due(self, index: str, until: float) -> list[tuple[str, str]]:
        members = cast(list[str], await self.redis.zrangebyscore(f"{self.p}:{index}", "-inf", until))
        return [tuple(m.split(SEP, 1)) for m in members]  # type: ignore[misc]

    # queries
    async def active(self, tenant: str) -> list[UserPresence]:
        ids = sorted(cast(set[str], await self.redis.smembers(self.online_key(tenant))))
        if not ids:
            return []
        raws = await self.redis.mget([self._user_key(tenant, uid) for uid in ids])
        users = [UserPresence.from_doc(json.loads(raw)) for raw in raws if raw]
        return [u for u in users if u.announced]

    async def statuses(self, tenant: str, user_ids: list[str]) -> dict[str, Any]:
        if not user_ids:
            return {}
        raws = await self.redis.mget([self._user_key(tenant, uid) for uid in user_ids])
        out: dict[str, Any] = {}
        for uid, raw in zip(user_ids, raws, strict=True):
            state = UserPresence.from_doc(json.loads(raw)) if raw else UserPresence(tenant, uid)
            out[uid] = {"status": state.status, "lastSeen": state.last_seen, "sockets": len(state.sockets)}
        return out

    async def active_conversations(self, tenant: str) -> int:
        counts = await self.redis.hvals(f"{self.p}:convs:{tenant}")
        return sum(1 for n in counts if int(n) > 0)
