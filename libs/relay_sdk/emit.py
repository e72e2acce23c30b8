"""Emit to clients from any internal process, without HTTP: publish to the `relay.emit` exchange.

Every gateway replica takes the envelopes that concern its local sockets and emits them there.

async with Emitter(amqp_url, instance="relay") as emitter:
    await emitter.to_user("acme", "u42", "notification", {"message": "hi", "type": "info"})
    await emitter.to_role("acme", "ADMIN", "admin-notification", {"message": "disk full"})
    await emitter.to_room("acme", "restaurant:r1", "order.note", {...})   # any wire room name
    await emitter.to_room("acme", "room:general", "room-message", {...})  # a seed-002 free room
    await emitter.to_tenant("acme", "announcement", {...})
    await emitter.to_everyone("announcement", {...})                      # every tenant
"""

from __future__ import annotations

from typing import Any

from relay_broker import Broker, Topology
from relay_contracts import Envelope
from relay_contracts import presence as p
from relay_contracts.routing import event_key
from relay_log import current_correlation_id, new_correlation_id


class Emitter:
    def __init__(self, amqp_url: str, *, instance: str = "relay", source: str = "relay-emitter") -> None:
        self.broker = Broker(amqp_url, Topology(instance))
        self.source = source

    async def connect(self) -> Emitter:
        await self.broker.connect()
        return self

    async def close(self) -> None:
        await self.broker.close()

    async def __aenter__(self) -> Emitter:
        return await self.connect()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def emit(
        self,
        scope: p.EmitScope,
        event: str,
        payload: Any = None,
        *,
        tenant: str,
        target: str = "_",
        namespace: str = "/",
        correlation_id: str | None = None,
    ) -> str:
        """Publish one emit (confirmed by the broker); returns the envelope id."""
        if scope == "role":
            target = target.lower()
        body = p.Emit(scope=scope, target=target, event=event, payload=payload, namespace=namespace)
        envelope = Envelope(
            type=p.EMIT,
            tenant=tenant,
            correlationId=correlation_id or current_correlation_id() or new_correlation_id(),
            data=body.model_dump(),
        )
        await self.broker.publish(self.broker.topology.emit, event_key(tenant, scope, target, p.EMIT), envelope)
        return envelope.id

    async def to_user(self, tenant: str, user_id: str, event: str, payload: Any = None, **kw: Any) -> str:
        return await self.emit("user", event, payload, tenant=tenant, target=user_id, **kw)

    async def to_room(self, tenant: str, room: str, event: str, payload: Any = None, **kw: Any) -> str:
        return await self.emit("room", event, payload, tenant=tenant, target=room, **kw)

    async def to_role(self, tenant: str, role: str, event: str, payload: Any = None, **kw: Any) -> str:
        return await self.emit("role", event, payload, tenant=tenant, target=role, **kw)

    async def to_tenant(self, tenant: str, event: str, payload: Any = None, **kw: Any) -> str:
        return await self.emit("tenant", event, payload, tenant=tenant, **kw)

    async def to_everyone(self, event: str, payload: Any = None, **kw: Any) -> str:
        return await self.emit("all", event, payload, tenant=p.EVERYONE_TENANT, **kw)


async def emit(amqp_url: str, scope: p.EmitScope, event: str, payload: Any = None, **kw: Any) -> str:
    """One-shot publish (connects, emits, closes); `instance=` picks the Relay instance."""
    instance = kw.pop("instance", "relay")
    async with Emitter(amqp_url, instance=instance) as emitter:
        return await emitter.emit(scope, event, payload, **kw)
