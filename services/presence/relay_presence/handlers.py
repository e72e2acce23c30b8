"""One async function per presence command, plus the sweeps (dead replicas, grace, idle).

No broker, HTTP or socket objects in here: state goes through the store, announcements through
`publish` (routing key, event).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from relay_contracts import Envelope, ErrorCode, RelayError, utcnow_iso
from relay_contracts import presence as p
from relay_log import get_logger, new_correlation_id

from relay_presence import domain
from relay_presence.adapters.store import PresenceStore
from relay_presence.announcements import announced, announcement
from relay_presence.metrics import REAPED
from relay_presence.rounds import Answer, Report, Rounds, answer_of

log = get_logger(__name__)

SYNC_SETTLE_SECONDS = 5.0
Publish = Callable[[str, Envelope], Awaitable[None]]
PublishMany = Callable[[list[tuple[str, Envelope]]], Awaitable[None]]
Update = Callable[[domain.UserPresence], domain.Change | None]


@dataclass
class Deps:
    store: PresenceStore
    publish: Publish
    publish_batch: PublishMany | None = None  # events in order, confirms awaited together
    rounds: Rounds = field(default_factory=Rounds)
    grace_seconds: float = 3.0  # a user whose last socket closed may come back this long unannounced
    idle_seconds: float = 300.0
    dead_after_seconds: float = 10.0  # a replica silent this long is dead: its sockets are reaped
    clock: Callable[[], float] = field(default=time.time)

    async def publish_many(self, events: list[tuple[str, Envelope]]) -> None:
        """Publish in this order: together when the broker can (`publish_batch`), else one after the other."""
        await (self.publish_batch or self._one_by_one)(events)

    async def _one_by_one(self, events: list[tuple[str, Envelope]]) -> None:
        for routing_key, event in events:
            await self.publish(routing_key, event)


def _actor(env: Envelope) -> str:
    if env.actor is None:
        raise RelayError(ErrorCode.AUTH_REQUIRED, "command has no actor")
    return env.actor.userId


async def update_user(
    deps: Deps, tenant: str, user_id: str, change: Update, *, correlation_id: str
) -> domain.UserPresence:
    """Apply `change` to one user under their lock; announce the transition it returns, once."""
    async with deps.store.locked(tenant, user_id) as (state, snapshot):
        transition = change(state)
        count = await deps.store.save(state, snapshot)
        if transition is not None:
            # still under the lock: one user's announcements leave in the order they happened
            await announce(deps, state, transition, count, correlation_id)
    return state


async def announce(
    deps: Deps, state: domain.UserPresence, change: domain.Change, count: int, correlation_id: str
) -> None:
    await deps.publish(*announcement(state, change, count, correlation_id))
    announced(state, change, count)


async def in_round(deps: Deps, report: Report) -> Answer:
    """Apply `report` in this instance's next round (rounds.py); on its own, waiting for the lock, when its
    user's lock was busy."""
    answer = await deps.rounds.submit(deps, report)
    if answer is not None:
        return answer
    if report.arriving_on and report.sid and not await deps.store.admit(report.sid, report.arriving_on, deps.clock()):
        return {"ignored": True}  # its disconnect was handled first
    if report.bury and report.sid:
        await deps.store.bury(report.sid)
    return answer_of(
        await update_user(deps, report.tenant, report.user_id, report.change, correlation_id=report.correlation_id)
    )


async def in_rounds(deps: Deps, reports: list[Report]) -> list[Answer]:
    return list(await asyncio.gather(*(in_round(deps, r) for r in reports)))


async def connect(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = p.Connect.model_validate(env.data)
    report = _connecting(
        deps, env.tenant, _actor(env), cmd.sid, cmd.replica, cmd.namespace, cmd.user, env.correlationId
    )
    return await in_round(deps, report)


def _connecting(
    deps: Deps,
    tenant: str,
    user_id: str,
    sid: str,
    replica: str,
    namespace: str,
    user: dict[str, Any],
    correlation_id: str,
) -> Report:
    now = deps.clock()
    socket = domain.Socket(sid, replica, namespace, now)
    return Report(tenant, user_id, lambda s: s.connect(socket, user, now), correlation_id, sid=sid, arriving_on=replica)


async def disconnect(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = p.Disconnect.model_validate(env.data)
    return await in_round(deps, _leaving(deps, env.tenant, _actor(env), cmd.sid, env.correlationId))


def _leaving(deps: Deps, tenant: str, user_id: str, sid: str, correlation_id: str, *, bury: bool = True) -> Report:
    now = deps.clock()

    def drop(s: domain.UserPresence) -> domain.Change | None:
        s.disconnect(sid, now, deps.grace_seconds)
        return s.settle(now)  # a zero grace announces at once

    return Report(tenant, user_id, drop, correlation_id, sid=sid, bury=bury)


async def heartbeat(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = p.Heartbeat.model_validate(env.data)
    previous = await deps.store.beat(cmd.replica, cmd.replicaId, deps.clock())
    if previous is not None:
        # the replica restarted: its previous incarnation's sockets are gone for sure
        await reap_replica(deps, previous, reason="restarted")
    return {"known": len(await deps.store.replica_sockets(cmd.replica))}


async def sync(env: Envelope, deps: Deps) -> dict[str, Any]:
    """Make the service's view of one replica match the replica's own list (lost or stale reports)."""
    cmd = p.Sync.model_validate(env.data)
    listed = {(s.tenant, s.userId, s.sid): s for s in cmd.sockets}
    known = set(await deps.store.replica_sockets(cmd.replica))
    leaving = []
    for tenant, user_id, sid in known - set(listed):
        # a socket that connected after the replica took its list is not in it: leave recent ones alone
        if await deps.store.socket_age(tenant, user_id, sid, deps.clock()) < SYNC_SETTLE_SECONDS:
            continue
        leaving.append(_leaving(deps, tenant, user_id, sid, env.correlationId, bury=False))
    removed = len(await in_rounds(deps, leaving))
    arriving = [
        _connecting(deps, s.tenant, s.userId, s.sid, cmd.replica, s.namespace, s.user, env.correlationId)
        for s in (listed[key] for key in set(listed) - known)
    ]
    added = sum(1 for answer in await in_rounds(deps, arriving) if not answer.get("ignored"))
    if added or removed:
        log.warning("presence.replica_resynced", replica=cmd.replica, added=added, removed=removed)
    return {"added": added, "removed": removed}


async def activity(env: Envelope, deps: Deps) -> dict[str, Any]:
    now = deps.clock()
    state = await update_user(
        deps, env.tenant, _actor(env), lambda s: s.activity(now), correlation_id=env.correlationId
    )
    return {"status": state.status}


async def set_status(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = p.SetStatus.model_validate(env.data)
    now = deps.clock()
    state = await update_user(
        deps, env.tenant, _actor(env), lambda s: s.set_status(cmd.status, now), correlation_id=env.correlationId
    )
    if state.status == domain.OFFLINE:
        raise RelayError(ErrorCode.CONFLICT, "not connected", field="status")
    return {"userId": state.user_id, "status": state.status, "timestamp": utcnow_iso()}


async def track_conversation(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = p.TrackConversation.model_validate(env.data)

    def track(s: domain.UserPresence) -> None:
        s.add_conversation(cmd.sid, cmd.conversationId, cmd.joined)

    await update_user(deps, env.tenant, _actor(env), track, correlation_id=env.correlationId)
    return {"ok": True}


async def active_users(env: Envelope, deps: Deps) -> dict[str, Any]:
    now = deps.clock()
    users = await deps.store.active(env.tenant)
    return {"users": [u.public(now) for u in users], "count": len(users)}


async def stats(env: Envelope, deps: Deps) -> dict[str, Any]:
    return domain.stats(await deps.store.active(env.tenant), deps.clock())


async def lookup(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = p.Lookup.model_validate(env.data)
    found = await deps.store.statuses(env.tenant, list(dict.fromkeys(cmd.userIds)))
    return {
        uid: {"status": v["status"], "lastSeen": domain.iso(v["lastSeen"]), "sockets": v["sockets"]}
        for uid, v in found.items()
    }


async def statistics(env: Envelope, deps: Deps) -> dict[str, Any]:
    """seed-003 `obtenerEstadisticas()`."""
    users = await deps.store.active(env.tenant)
    return {
        "usuariosConectados": sum(1 for u in users if u.sockets),
        "conversacionesActivas": await deps.store.active_conversations(env.tenant),
        "totalSockets": sum(len(u.sockets) for u in users),
        "timestamp": utcnow_iso(),
    }


# sweeps, run by one presence instance at a time
async def reap_replica(deps: Deps, incarnation: str, *, reason: str) -> int:
    sockets = await deps.store.replica_sockets(incarnation)
    cid = new_correlation_id()
    await in_rounds(deps, [_leaving(deps, tenant, user_id, sid, cid) for tenant, user_id, sid in sockets])
    await deps.store.forget_replica(incarnation)
    REAPED.inc(len(sockets))
    log.warning("presence.replica_reaped", replica=incarnation, sockets=len(sockets), reason=reason)
    return len(sockets)


async def sweep(deps: Deps, *, started_at: float) -> None:
    now = deps.clock()
    for incarnation, last in (await deps.store.replicas()).items():
        # after our own restart, heartbeats queued meanwhile are still arriving: count from our start
        if max(last, started_at) < now - deps.dead_after_seconds:
            await reap_replica(deps, incarnation, reason="heartbeat stopped")
    cid = new_correlation_id()
    due = await deps.store.due("pending", now)
    await in_rounds(deps, [Report(tenant, user_id, lambda s: s.settle(now), cid) for tenant, user_id in due])
    idle = await deps.store.due("activity", now - deps.idle_seconds)
    await in_rounds(
        deps, [Report(tenant, user_id, lambda s: s.idle(now, deps.idle_seconds), cid) for tenant, user_id in idle]
    )


class Handler(Protocol):
    """A command handler: bootstrap binds `deps` by name (functools.partial)."""

    def __call__(self, env: Envelope, deps: Deps) -> Awaitable[Any]: ...


HANDLERS: dict[str, Handler] = {
    p.CONNECT: connect,
    p.DISCONNECT: disconnect,
    p.HEARTBEAT: heartbeat,
    p.SYNC: sync,
    p.ACTIVITY: activity,
    p.SET_STATUS: set_status,
    p.TRACK_CONVERSATION: track_conversation,
    p.ACTIVE_USERS: active_users,
    p.STATS: stats,
    p.LOOKUP: lookup,
    p.STATISTICS: statistics,
}
