"""seed-001 support chat on `/`: `chat:join` / `chat:leave`."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from relay_contracts import ErrorCode, RelayError, utcnow_iso
from relay_contracts import messages as m
from relay_contracts.routing import interest_pattern

from relay_gateway.context import Connection, Gateway
from relay_gateway.rooms import scoped, support_agents_room, support_room
from relay_gateway.sockets.router import SocketRouter

# seed-001 agents join the notes room by passing `chat:{id}:commercial` as the chatId
AGENTS_ROOM = re.compile(r"^chat:(?P<id>.+):commercial$")
PLAIN_ROOM = re.compile(r"^chat:(?P<id>.+)$")


class ChatRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    chatId: str = Field(min_length=1, max_length=200)


def parse_chat_ref(raw: str) -> tuple[str, bool]:
    """(conversation id, wants the agents' notes room)."""
    if match := AGENTS_ROOM.match(raw):
        return match["id"], True
    if match := PLAIN_ROOM.match(raw):
        return match["id"], False
    return raw, False


def register(router: SocketRouter) -> None:
    @router.on("chat:join", ChatRef)
    async def chat_join(gw: Gateway, conn: Connection, ref: ChatRef) -> dict[str, Any]:
        """Join `chat:{id}` (members only; agents also get the notes room); answers `chat:joined`."""
        principal = conn.principal
        assert principal is not None
        chat_id, notes = parse_chat_ref(ref.chatId)
        if notes and not principal.is_agent:
            raise RelayError(ErrorCode.PERMISSION_DENIED, "internal notes are for agents only", field="chatId")
        # the message service decides: it knows the members (raises NOT_FOUND / PERMISSION_DENIED)
        await gw.bus.call(principal, m.CHECK_ACCESS, {"conversationId": chat_id})
        rooms = [support_room(chat_id)]
        if principal.is_agent:
            rooms.append(support_agents_room(chat_id))
        await gw.delivery.interest.add(conn.sid, interest_pattern(principal.tenant, "conv", chat_id))
        for room in rooms:
            await gw.sio.enter_room(conn.sid, scoped(principal.tenant, room), namespace=conn.namespace)
        room_name = support_agents_room(chat_id) if notes else support_room(chat_id)
        body = {"chatId": chat_id, "roomName": room_name, "timestamp": utcnow_iso()}
        await gw.sio.emit("chat:joined", body, to=conn.sid, namespace=conn.namespace)
        return {"success": True, **body}

    @router.on("chat:leave", ChatRef)
    async def chat_leave(gw: Gateway, conn: Connection, ref: ChatRef) -> dict[str, Any]:
        """Leave `chat:{id}` (or only the notes room with `chat:{id}:commercial`); answers `chat:left`."""
        principal = conn.principal
        assert principal is not None
        chat_id, notes = parse_chat_ref(ref.chatId)
        rooms = [support_agents_room(chat_id)] if notes else [support_room(chat_id), support_agents_room(chat_id)]
        for room in rooms:
            await gw.sio.leave_room(conn.sid, scoped(principal.tenant, room), namespace=conn.namespace)
        if not notes:
            await gw.delivery.interest.remove(conn.sid, interest_pattern(principal.tenant, "conv", chat_id))
        body = {"chatId": chat_id, "roomName": rooms[0], "timestamp": utcnow_iso()}
        await gw.sio.emit("chat:left", body, to=conn.sid, namespace=conn.namespace)
        return {"success": True, **body}
