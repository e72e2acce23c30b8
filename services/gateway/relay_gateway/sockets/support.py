"""seed-001 support chat on `/`: `chat:join` / `chat:leave`, `chat:sync` (gap recovery), typing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from relay_contracts import ErrorCode, RelayError, utcnow_iso
from relay_contracts import messages as m
from relay_contracts.routing import interest_pattern

from relay_gateway.access import AgentGrants
from relay_gateway.context import Connection, Gateway
from relay_gateway.dialects.support import message_payload
from relay_gateway.rooms import conversation_rooms, parse_chat_ref, scoped, support_agents_room, support_room
from relay_gateway.sockets import typing
from relay_gateway.sockets.router import SocketRouter


class ChatRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    chatId: str = Field(min_length=1, max_length=200)


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chatId: str = Field(min_length=1, max_length=200)
    afterSeq: StrictInt = Field(default=0, ge=0)
    limit: StrictInt = Field(default=200, ge=1, le=200)


def register(router: SocketRouter) -> None:
    typists = typing.register(router)
    grants = AgentGrants()

    @router.on("chat:join", ChatRef, limit="join")
    async def chat_join(gw: Gateway, conn: Connection, ref: ChatRef) -> dict[str, Any]:
        """Join `chat:{id}` (members only; agents also get the notes room); answers `chat:joined`."""
        principal = conn.principal
        assert principal is not None
        chat_id, notes = parse_chat_ref(ref.chatId)
        if notes and not principal.is_agent:
            raise RelayError(ErrorCode.PERMISSION_DENIED, "internal notes are for agents only", field="chatId")
        # the message service decides: it knows the members (raises NOT_FOUND / PERMISSION_DENIED)
        await grants.check(gw, principal, chat_id)
        rooms = [support_room(chat_id)]
        if principal.is_agent:
            rooms.append(support_agents_room(chat_id))
        await gw.delivery.interest.add(conn.sid, interest_pattern(principal.tenant, "conv", chat_id))
        for room in rooms:
            await gw.sio.enter_room(conn.sid, scoped(principal.tenant, room), namespace=conn.namespace)
        room_name = support_agents_room(chat_id) if notes else support_room(chat_id)
        body = {"chatId": chat_id, "roomName": room_name, "timestamp": utcnow_iso()}
        await gw.reply(conn, "chat:joined", body)
        return {"success": True, **body}

    @router.on("chat:leave", ChatRef)
    async def chat_leave(gw: Gateway, conn: Connection, ref: ChatRef) -> dict[str, Any]:
        """Leave `chat:{id}` (or only the notes room with `chat:{id}:commercial`); answers `chat:left`."""
        principal = conn.principal
        assert principal is not None
        chat_id, notes = parse_chat_ref(ref.chatId)
        if not notes:
            await typists.stop(conn, chat_id)
        rooms = [support_agents_room(chat_id)] if notes else [support_room(chat_id), support_agents_room(chat_id)]
        for room in rooms:
            await gw.sio.leave_room(conn.sid, scoped(principal.tenant, room), namespace=conn.namespace)
        # a socket may also follow the conversation in another dialect's room (mensajería)
        still_in = set(gw.sio.rooms(conn.sid, namespace=conn.namespace))
        if not any(scoped(principal.tenant, room) in still_in for room in conversation_rooms(chat_id)):
            await gw.delivery.interest.remove(conn.sid, interest_pattern(principal.tenant, "conv", chat_id))
        body = {"chatId": chat_id, "roomName": rooms[0], "timestamp": utcnow_iso()}
        await gw.reply(conn, "chat:left", body)
        return {"success": True, **body}

    @router.on("chat:sync", SyncRequest, limit="sync")
    async def chat_sync(gw: Gateway, conn: Connection, req: SyncRequest) -> dict[str, Any]:
        """The messages after `afterSeq` this user may see (a visitor never gets a note), in seq order."""
        principal = conn.principal
        assert principal is not None
        chat_id, _ = parse_chat_ref(req.chatId)
        page = await gw.bus.call(
            principal, m.GET_HISTORY, {"conversationId": chat_id, "afterSeq": req.afterSeq, "limit": req.limit}
        )
        messages = [message_payload(x) for x in page["messages"]]
        body = {
            "chatId": chat_id,
            "afterSeq": req.afterSeq,
            "messages": messages,
            "hasMore": page["hasMore"],
            "lastSeq": messages[-1]["seq"] if messages else req.afterSeq,
        }
        await gw.reply(conn, "chat:synced", body)
        return {"success": True, **body}
