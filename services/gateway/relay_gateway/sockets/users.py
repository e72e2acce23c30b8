"""seed-002 user management on `/`: active users, stats, public/private messages, free rooms; `presence:set`.

Gateway-originated emits (messages, room traffic) travel through the Redis adapter to every replica;
presence transitions come from the presence service through the event queue.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from relay_auth import Principal
from relay_contracts import ErrorCode, RelayError, utcnow_iso
from relay_contracts import presence as p

from relay_gateway import metrics
from relay_gateway.context import Connection, Gateway
from relay_gateway.presence import PresenceReporter
from relay_gateway.presence import shown_user as sender
from relay_gateway.presence_audience import PresenceAudience
from relay_gateway.rooms import free_room, scoped, tenant_room, user_room
from relay_gateway.sockets.router import SocketRouter

NAMESPACE = "/"
RESERVED_PREFIXES = ("chat:", "channel:", "thread:", "user:", "restaurant:", "tenant:")
ROOM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-. ]{0,63}$")
MAX_FREE_ROOMS_PER_SOCKET = 50


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SendMessage(Lenient):
    message: str = Field(min_length=1, max_length=100_000)  # the configured limit is checked below
    to: str | None = Field(default=None, min_length=1, max_length=128)


class RoomRef(Lenient):
    room: str = Field(min_length=1, max_length=200)


class RoomMessage(RoomRef):
    message: str = Field(min_length=1, max_length=100_000)


class SetStatus(Lenient):
    status: str = Field(pattern=r"^(online|away)$")


def check_room_name(name: str) -> str:
    """A free room name, or a clear refusal: reserved prefixes are never joinable this way."""
    if name.lower().startswith(RESERVED_PREFIXES):
        raise RelayError(ErrorCode.PERMISSION_DENIED, f"room name '{name}' uses a reserved prefix", field="room")
    if not ROOM_NAME.match(name):
        raise RelayError(
            ErrorCode.VALIDATION_ERROR,
            "room: 1-64 letters, digits, space, '_', '-', '.'; starting with a letter or digit",
            field="room",
        )
    return name


def check_text(gw: Gateway, text: str) -> str:
    if len(text) > gw.settings.max_text_length:
        raise RelayError(
            ErrorCode.VALIDATION_ERROR, f"message exceeds {gw.settings.max_text_length} characters", field="message"
        )
    if not text.strip():
        raise RelayError(ErrorCode.VALIDATION_ERROR, "message is empty", field="message")
    return text


async def emit_everywhere(
    gw: Gateway, event: str, payload: dict[str, Any], room: str, *, skip_sid: str | None = None
) -> None:
    """Emit to a tenant-scoped room on every replica (through the Redis adapter)."""
    await gw.sio.emit(event, payload, room=room, skip_sid=skip_sid, namespace=NAMESPACE)
    metrics.EVENTS_OUT.labels(NAMESPACE, event).inc()


async def require_online(gw: Gateway, principal: Any, user_id: str, field: str) -> None:
    found = await gw.bus.call(principal, p.LOOKUP, {"userIds": [user_id]})
    if not found.get(user_id, {}).get("sockets"):
        raise RelayError(ErrorCode.NOT_FOUND, f"User {user_id} is not online", field=field)


def free_room_of(conn: Connection, raw: str) -> tuple[Principal, str, str]:
    """(caller, free room name, its tenant-scoped Socket.IO room) for a client-sent room name."""
    principal = conn.principal
    assert principal is not None
    name = check_room_name(raw)
    return principal, name, scoped(principal.tenant, free_room(name))


def register(router: SocketRouter) -> None:
    PresenceReporter(router.gw).install()
    audience = PresenceAudience(router.gw)
    audience.install()

    @router.on("get-active-users", limit="query")
    async def get_active_users(gw: Gateway, conn: Connection, _: Any) -> dict[str, Any]:
        """Users online or away in the caller's tenant, on every replica: `active-users {users, count}`."""
        assert conn.principal is not None
        body = audience.visible(conn, await gw.bus.call(conn.principal, p.ACTIVE_USERS, {}))
        await gw.sio.emit("active-users", body, to=conn.sid, namespace=NAMESPACE)
        return {"success": True, **body}

    @router.on("get-users-stats", limit="query")
    async def get_users_stats(gw: Gateway, conn: Connection, _: Any) -> dict[str, Any]:
        """Tenant totals, users per role and connection times: `users-stats`."""
        assert conn.principal is not None
        body = audience.visible(conn, await gw.bus.call(conn.principal, p.STATS, {}))
        await gw.sio.emit("users-stats", body, to=conn.sid, namespace=NAMESPACE)
        return {"success": True, **body}

    @router.on("send-message", SendMessage, limit="message")
    async def send_message(gw: Gateway, conn: Connection, msg: SendMessage) -> dict[str, Any]:
        """`broadcast-message` to the tenant, or `private-message` to every socket of `to` (`NOT_FOUND` if offline)."""
        principal = conn.principal
        assert principal is not None
        body = {"from": sender(principal), "message": check_text(gw, msg.message), "timestamp": utcnow_iso()}
        if msg.to is None:
            await emit_everywhere(gw, "broadcast-message", body, scoped(principal.tenant, tenant_room()))
            return {"success": True, "type": "broadcast", **body}
        await require_online(gw, principal, msg.to, "to")
        await emit_everywhere(
            gw, "private-message", {**body, "to": msg.to}, scoped(principal.tenant, user_room(msg.to))
        )
        return {"success": True, "type": "private", "to": msg.to, **body}

    @router.on("join-room", RoomRef, limit="join")
    async def join_room(gw: Gateway, conn: Connection, ref: RoomRef) -> dict[str, Any]:
        """Join a free room (reserved prefixes refused): `joined-room`, and `user-joined-room` to its members."""
        principal, name, room = free_room_of(conn, ref.room)
        joined = [
            r for r in gw.sio.rooms(conn.sid, namespace=NAMESPACE) if r.startswith(scoped(principal.tenant, "room:"))
        ]
        if room not in joined and len(joined) >= MAX_FREE_ROOMS_PER_SOCKET:
            raise RelayError(
                ErrorCode.PERMISSION_DENIED, f"at most {MAX_FREE_ROOMS_PER_SOCKET} rooms per connection", field="room"
            )
        await gw.sio.enter_room(conn.sid, room, namespace=NAMESPACE)
        now = utcnow_iso()
        await emit_everywhere(
            gw,
            "user-joined-room",
            {"user": sender(principal), "room": name, "timestamp": now},
            room,
            skip_sid=conn.sid,
        )
        body = {"room": name, "message": f"Joined room {name}"}
        await gw.sio.emit("joined-room", body, to=conn.sid, namespace=NAMESPACE)
        return {"success": True, **body}

    @router.on("leave-room", RoomRef)
    async def leave_room(gw: Gateway, conn: Connection, ref: RoomRef) -> dict[str, Any]:
        """Leave a free room: `left-room`, and `user-left-room` to its members."""
        principal, name, room = free_room_of(conn, ref.room)
        if room in gw.sio.rooms(conn.sid, namespace=NAMESPACE):
            await gw.sio.leave_room(conn.sid, room, namespace=NAMESPACE)
            await emit_everywhere(
                gw, "user-left-room", {"user": sender(principal), "room": name, "timestamp": utcnow_iso()}, room
            )
        body = {"room": name, "message": f"Left room {name}"}
        await gw.sio.emit("left-room", body, to=conn.sid, namespace=NAMESPACE)
        return {"success": True, **body}

    @router.on("room-message", RoomMessage, limit="message")
    async def room_message(gw: Gateway, conn: Connection, msg: RoomMessage) -> dict[str, Any]:
        """`room-message` to the members of a free room the caller has joined, on every replica."""
        principal, name, room = free_room_of(conn, msg.room)
        if room not in gw.sio.rooms(conn.sid, namespace=NAMESPACE):
            raise RelayError(ErrorCode.PERMISSION_DENIED, f"join room '{name}' before sending to it", field="room")
        body = {
            "from": sender(principal),
            "message": check_text(gw, msg.message),
            "room": name,
            "timestamp": utcnow_iso(),
        }
        await emit_everywhere(gw, "room-message", body, room)
        return {"success": True, **body}

    @router.on("presence:set", SetStatus, limit="typing")
    async def presence_set(gw: Gateway, conn: Connection, cmd: SetStatus) -> dict[str, Any]:
        """Say you are `away` (sticky) or back `online`; announced to the tenant once."""
        assert conn.principal is not None
        body = await gw.bus.call(conn.principal, p.SET_STATUS, {"status": cmd.status})
        await gw.sio.emit("presence:status", body, to=conn.sid, namespace=NAMESPACE)
        return {"success": True, **body}
