"""Presence transitions as each dialect announces them, and `relay.emit` envelopes.

`presence.changed` (one per user transition, from the presence service) renders, per dialect, to the
sockets entitled to see it (presence_audience.py) that speak that dialect (speaks.py): seed-002
`user-connected` / `user-disconnected`, seed-003 `usuario_conectado` / `usuario_desconectado` and
`estado_usuario_cambiado`. seed-000 `user_presence` goes to the user's channels only, which needs
their channel list: the channels feature sends it (`sockets/channels.py`, `on_presence_changed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from relay_contracts import Envelope
from relay_contracts import presence as p

from relay_gateway.dialects import Delivery, Table
from relay_gateway.presence_audience import shown_to_restricted
from relay_gateway.rooms import EVERYONE, presence_of_room, presence_room, role_room, tenant_room, user_room

NAMESPACE = "/"


def _came_online(data: dict[str, Any]) -> bool:
    came: bool = data["previous"] == "offline" and data["status"] != "offline"
    return came


def _went_offline(data: dict[str, Any]) -> bool:
    went: bool = data["status"] == "offline"
    return went


def audience(dialect: str, data: dict[str, Any]) -> tuple[str, ...]:
    """The rooms of the sockets that see this transition in `dialect`: tenant-wide, and those that may see the user."""
    if shown_to_restricted(data["user"]):
        return (presence_room(dialect), presence_of_room(dialect, data["userId"]))
    return (presence_room(dialect),)


def _users(env: Envelope) -> Iterator[Delivery]:
    """seed-002: `{user, timestamp, activeUsersCount}` when a user comes online or goes offline."""
    data = env.data
    body = {"user": data["user"], "timestamp": data["timestamp"], "activeUsersCount": data["activeUsersCount"]}
    rooms = audience("users", data)
    if _came_online(data):
        yield Delivery(NAMESPACE, rooms, "user-connected", body)
    elif _went_offline(data):
        yield Delivery(NAMESPACE, rooms, "user-disconnected", body)


def _mensajeria(env: Envelope) -> Iterator[Delivery]:
    """seed-003: connected/disconnected on those transitions; `estado_usuario_cambiado` on every one."""
    data = env.data
    who = {"usuarioId": data["userId"], "timestamp": data["timestamp"]}
    rooms = audience("mensajeria", data)
    if _came_online(data):
        yield Delivery(NAMESPACE, rooms, "usuario_conectado", {**who, "usuario": data["user"]})
    elif _went_offline(data):
        yield Delivery(NAMESPACE, rooms, "usuario_desconectado", {**who, "ultimaConexion": data["lastSeen"]})
    yield Delivery(
        NAMESPACE,
        rooms,
        "estado_usuario_cambiado",
        {**who, "conectado": data["online"], "estado": data["status"], "ultimaConexion": data["lastSeen"]},
    )


def user_presence_payload(data: dict[str, Any]) -> dict[str, Any]:
    """seed-000 `user_presence {userId, status, timestamp}`."""
    return {"userId": data["userId"], "status": data["status"], "timestamp": data["timestamp"]}


# the wire room of each emit scope, from its target
_EMIT_ROOMS: dict[str, Callable[[str], str]] = {
    "user": user_room,
    "role": role_room,
    "room": lambda target: target,
    "tenant": lambda _: tenant_room(),
    "all": lambda _: EVERYONE,
}


def _emit(env: Envelope) -> Iterator[Delivery]:
    cmd = p.Emit.model_validate(env.data)
    yield Delivery(cmd.namespace, _EMIT_ROOMS[cmd.scope](cmd.target), cmd.event, cmd.payload)


TABLE: Table = {
    p.CHANGED: [_users, _mensajeria],
    p.EMIT: [_emit],
}
