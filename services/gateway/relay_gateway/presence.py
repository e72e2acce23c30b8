"""This replica's side of presence: report sockets, activity and its own liveness to the presence service.

Each boot of a replica is a new incarnation (`<replica id>/<boot id>`): the presence service reaps
the sockets of an incarnation whose heartbeat stopped, or at once when the same replica id comes
back with a new boot id.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from relay_auth import Principal
from relay_contracts import Envelope
from relay_contracts import presence as p
from relay_log import get_logger, new_correlation_id
from relay_ops.metrics import CONSUMER_LAG

from relay_gateway import metrics
from relay_gateway.context import Connection, Gateway
from relay_gateway.rooms import EVERYONE, SEP, role_room, scoped
from relay_gateway.tasks import TaskSet

log = get_logger(__name__)

QUIET_EVENTS = frozenset({"presence:set", "ping", "health-check", "get-active-users", "get-users-stats"})


def shown_user(principal: Principal) -> dict[str, Any]:
    """The user as other users see them (presence, `from`): the public user without the email address."""
    return {k: v for k, v in principal.public().items() if k != "email"}


class PresenceReporter:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.incarnation = f"{gw.settings.replica_id}/{uuid.uuid4().hex[:12]}"
        self._last_activity: dict[tuple[str, str], float] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._background = TaskSet()
        self._connecting: dict[str, asyncio.Task[None]] = {}  # sid -> its connect report, until it goes

    def install(self) -> None:
        self.gw.on_principal.append(self.connected)
        self.gw.on_disconnect.append(self.disconnected)
        self.gw.on_activity.append(self.active)

    async def connected(self, gw: Gateway, conn: Connection) -> None:
        principal = conn.principal
        assert principal is not None
        for role in principal.roles:
            await gw.sio.enter_room(conn.sid, scoped(principal.tenant, role_room(role)), namespace=conn.namespace)
        await gw.sio.enter_room(conn.sid, scoped(p.EVERYONE_TENANT, EVERYONE), namespace=conn.namespace)
        self._ensure_heartbeat()
        # connecting is activity: the first event the socket sends need not report it again
        self._note_activity(principal.tenant, principal.user_id)
        data = {
            "sid": conn.sid,
            "replica": self.incarnation,
            "namespace": conn.namespace,
            "user": shown_user(principal),
        }
        # in the background: the handshake need not wait for the broker's confirm (a storm of them queues)
        report = self._connecting[conn.sid] = self._spawn(self._send(principal, p.CONNECT, data))
        report.add_done_callback(lambda done: self._connecting.pop(conn.sid, None) if done is report else None)

    async def disconnected(self, gw: Gateway, conn: Connection) -> None:
        reported = self._connecting.pop(conn.sid, None)
        if conn.principal is not None:
            if reported is not None:
                await asyncio.shield(reported)  # the service hears of the socket before it hears it went
            await self._send(conn.principal, p.DISCONNECT, {"sid": conn.sid, "replica": self.incarnation})

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return self._background.spawn(work)

    def active(self, gw: Gateway, conn: Connection, event: str) -> None:
        principal = conn.principal
        if principal is None or event in QUIET_EVENTS:
            return
        if not self._note_activity(principal.tenant, principal.user_id):
            return
        self._spawn(self._send(principal, p.ACTIVITY, {}))

    def _note_activity(self, tenant: str, user_id: str) -> bool:
        """Record activity now; False when the user's last report is recent enough to skip this one."""
        key, now = (tenant, user_id), time.monotonic()
        if now - self._last_activity.get(key, -1e9) < self.gw.settings.presence_activity_seconds:
            return False
        if len(self._last_activity) > 50_000:
            self._last_activity.clear()  # only a throttle: forgetting costs one extra report per user
        self._last_activity[key] = now
        return True

    async def _send(self, principal: Principal, command: str, data: dict[str, Any]) -> None:
        try:
            await self.gw.bus.send(principal, command, data)
        except Exception:
            # the presence service catches up from heartbeats and reaping; the socket itself is fine
            log.warning("presence.report_failed", command=command, user_id=principal.user_id)

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._beat(), name="relay-presence-heartbeat")

    def _envelope(self, command: str, data: dict[str, Any]) -> Envelope:
        return Envelope(type=command, tenant="_", correlationId=new_correlation_id(), data=data)

    async def _beat(self) -> None:
        every = self.gw.settings.heartbeat_every
        previous = (-1, -1)
        while True:
            try:
                # straight to Redis: liveness must not wait behind a backlog of presence commands
                await self.gw.redis.hset(p.liveness_key(self.gw.settings.relay_instance), self.incarnation, time.time())
            except Exception:
                log.warning("presence.liveness_write_failed")
            try:
                mine = [c for c in self.gw.connections.values() if c.principal is not None]
                beat = {"replica": self.incarnation, "replicaId": self.gw.settings.replica_id, "sockets": len(mine)}
                answer = await self.gw.bus.call_envelope(self._envelope(p.HEARTBEAT, beat), timeout=max(1.0, every))
                # reports in flight explain a disagreement while either count still moves (a connect storm
                # queued at the service); the same disagreement on two beats in a row means one was lost: resync
                counts = (len(mine), int(answer.get("known", -1)))
                stuck = counts[0] != counts[1] and counts == previous
                previous = (-1, -1) if stuck else counts
                if stuck:
                    await self.gw.bus.send_envelope(self._envelope(p.SYNC, self._snapshot(mine)))
            except Exception:
                log.warning("presence.heartbeat_failed")
            await self._sample()
            await asyncio.sleep(every)

    def _snapshot(self, conns: list[Connection]) -> dict[str, Any]:
        sockets = []
        for conn in conns:
            principal = conn.principal
            assert principal is not None
            sockets.append(
                {
                    "sid": conn.sid,
                    "tenant": principal.tenant,
                    "userId": principal.user_id,
                    "namespace": conn.namespace,
                    "user": shown_user(principal),
                }
            )
        return {"replica": self.incarnation, "sockets": sockets}

    async def _sample(self) -> None:
        replica = self.gw.settings.replica_id
        rooms = getattr(self.gw.sio.manager, "rooms", {})
        for namespace, by_room in rooms.items():
            metrics.ROOMS.labels(replica, namespace).set(sum(1 for r in by_room if r and SEP in r))
        backlog = await self.gw.delivery.backlog()
        if backlog is not None:
            CONSUMER_LAG.labels("gateway", self.gw.delivery.queue_base).set(backlog)


# for the mensajería feature: seed-003 `conversacionesActivas`
async def track_conversation(gw: Gateway, conn: Connection, conversation_id: str, *, joined: bool) -> None:
    """Count the socket in (or out of) a conversation for the seed-003 statistics; best effort."""
    if conn.principal is None:
        return
    data = {"sid": conn.sid, "conversationId": conversation_id, "joined": joined}
    try:
        await gw.bus.send(conn.principal, p.TRACK_CONVERSATION, data)
    except Exception:
        log.warning("presence.track_failed", conversation_id=conversation_id)
