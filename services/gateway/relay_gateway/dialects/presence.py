"""Presence transitions as each dialect announces them, and `relay.emit` envelopes.

`presence.changed` (one per user transition, from the presence service) renders to the tenant room:
seed-002 `user-connected` / `user-disconnected`, seed-003 `usuario_conectado` / `usuario_desconectado`
and `estado_usuario_cambiado`; seed-000 `user_presence` to the tenant's `/chat` sockets (a superset of
"the user's channels" that reveals nothing the tenant-wide seed-002/003 announcements do not; a
per-channel renderer can replace `chat_user_presence` using `user_presence_payload`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from relay_contracts import Envelope
from relay_contracts import presence as p

from relay_gateway.dialects import Delivery, Table
from relay_gateway.rooms import EVERYONE, role_room, tenant_room, user_room

NAMESPACE = "/"
CHAT_NAMESPACE = "/chat"


def _came_online(data: dict[str, Any]) -> bool:
    return data["previous"] == "offline" and data["status"] != "offline"


def _went_offline(data: dict[str, Any]) -> bool:
    return data["status"] == "offline"


def _users(env: Envelope) -> Iterator[Delivery]:
    """seed-002: `{user, timestamp, activeUsersCount}` when a user comes online or goes offline."""
    data = env.data
    body = {"user": data["user"], "timestamp": data["timestamp"], "activeUsersCount": data["activeUsersCount"]}
    if _came_online(data):
        yield Delivery(NAMESPACE, tenant_room(), "user-connected", body)
    elif _went_offline(data):
        yield Delivery(NAMESPACE, tenant_room(), "user-disconnected", body)


def _mensajeria(env: Envelope) -> Iterator[Delivery]:
    """seed-003: connected/disconnected on those transitions; `estado_usuario_cambiado` on every one."""
    data = env.data
    who = {"usuarioId": data["userId"], "timestamp": data["timestamp"]}
    if _came_online(data):
        yield Delivery(NAMESPACE, tenant_room(), "usuario_conectado", {**who, "usuario": data["user"]})
    elif _went_offline(data):
        yield Delivery(NAMESPACE, tenant_room(), "usuario_desconectado", {**who, "ultimaConexion": data["lastSeen"]})
    yield Delivery(
        NAMESPACE,
        tenant_room(),
        "estado_usuario_cambiado",
        {**who, "conectado": data["online"], "estado": data["status"], "ultimaConexion": data["lastSeen"]},
    )


def user_presence_payload(data: dict[str, Any]) -> dict[str, Any]:
    """seed-000 `user_presence {userId, status, timestamp}`."""
    return {"userId": data["userId"], "status": data["status"], "timestamp": data["timestamp"]}


def chat_user_presence(env: Envelope) -> Iterator[Delivery]:
    """seed-000 `user_presence` to the tenant's `/chat` sockets."""
    yield Delivery(CHAT_NAMESPACE, tenant_room(), "user_presence", user_presence_payload(env.data))


def _emit(env: Envelope) -> Iterator[Delivery]:
    cmd = p.Emit.model_validate(env.data)
    room = {
        "user": lambda: user_room(cmd.target),
        "role": lambda: role_room(cmd.target),
        "room": lambda: cmd.target,
        "tenant": tenant_room,
        "all": lambda: EVERYONE,
    }[cmd.scope]()
    yield Delivery(cmd.namespace, room, cmd.event, cmd.payload)


TABLE: Table = {
    p.CHANGED: [_users, _mensajeria, chat_user_presence],
    p.EMIT: [_emit],
}
