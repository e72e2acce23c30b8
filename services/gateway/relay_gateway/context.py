"""What socket and REST handlers of the gateway share: one object, built by bootstrap."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import socketio
from redis.asyncio import Redis
from relay_auth import Principal

from relay_gateway.commands import CommandBus
from relay_gateway.delivery import EventDelivery
from relay_gateway.identity import Authenticator
from relay_gateway.ratelimit import RateLimiter
from relay_gateway.settings import GatewaySettings


@dataclass(slots=True)
class Connection:
    sid: str
    namespace: str
    principal: Principal | None
    connected_at: float = field(default_factory=time.time)
    # the dialect the socket speaks (speaks.py): a handshake hint or its first dialect-specific event
    dialect: str | None = None


ConnectionHook = Callable[["Gateway", Connection], Awaitable[None]]


@dataclass
class Gateway:
    settings: GatewaySettings
    sio: socketio.AsyncServer
    redis: Redis
    auth: Authenticator
    bus: CommandBus
    delivery: EventDelivery
    connections: dict[str, Connection] = field(default_factory=dict)
    # features add hooks here: run when a connection gets its principal (handshake or late auth),
    # and when an authenticated or anonymous connection goes away
    on_principal: list[ConnectionHook] = field(default_factory=list)
    on_disconnect: list[ConnectionHook] = field(default_factory=list)
    # background work a feature runs while the replica is up (started by GatewayApp.start, cancelled at close)
    on_start: list[Callable[[Gateway], Coroutine[Any, Any, None]]] = field(default_factory=list)
    limiter: RateLimiter | None = None  # per-user limits shared across replicas (None: unlimited)
    # called (synchronously, keep it cheap) for every socket event an authenticated connection sends
    on_activity: list[Callable[[Gateway, Connection, str], None]] = field(default_factory=list)
    # run once per connection, when its dialect becomes known after it connected (speaks.py)
    on_dialect: list[ConnectionHook] = field(default_factory=list)

    async def reply(self, conn: Connection, event: str, body: object) -> None:
        """Emit to one socket of this replica: its own, so no trip through the Redis adapter to every replica."""
        await self.sio.emit(event, body, to=conn.sid, namespace=conn.namespace, ignore_queue=True)

    def principal(self, sid: str) -> Principal | None:
        conn = self.connections.get(sid)
        return conn.principal if conn else None

    async def limit(self, rule: str, principal: Principal | None, *, fallback: str = "") -> None:
        """Count a hit of `rule` for the user (or `fallback`, e.g. a sid); raises RATE_LIMITED when over."""
        if self.limiter is None:
            return
        subject = f"{principal.tenant}/{principal.user_id}" if principal is not None else f"anon/{fallback}"
        await self.limiter.hit(rule, subject)
