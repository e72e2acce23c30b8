"""seed-000 enterprise chat on `/chat`: channel rooms, messages, edits, reactions, typing, threads, sync.

On connect a socket joins the room of every channel its user belongs to. Writes go to the message
service; what users see comes back as domain events rendered by `dialects.channels`. Typing and
join/leave notices are the gateway's own and travel between replicas through the Redis manager.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from relay_auth import Principal
from relay_contracts import Envelope, ErrorCode, RelayError, utcnow_iso
from relay_contracts import messages as m
from relay_contracts import presence as p
from relay_contracts.routing import interest_pattern
from relay_log import get_logger

from relay_gateway.context import Connection, Gateway
from relay_gateway.dialects.channels import NAMESPACE, channel_message
from relay_gateway.dialects.presence import user_presence_payload
from relay_gateway.presence_audience import RESTRICTED_ROOM, shown_to_restricted
from relay_gateway.rooms import channel_room, scoped, thread_room, user_room
from relay_gateway.sockets.router import SocketRouter
from relay_gateway.tasks import TaskSet

log = get_logger(__name__)

TYPING_EXPIRES_SECONDS = 5.0
Ref = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-:@.]+$")]
Text = Annotated[str, StringConstraints(max_length=100_000)]
Refs = Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=2048)]], Field(max_length=20)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelRef(Payload):
    channelId: Ref


class SendMessageIn(Payload):
    text: Text
    channelId: Ref
    threadId: Ref | None = None
    parentMessageId: Ref | None = None
    attachments: Refs | None = None
    mentions: Annotated[list[Ref], Field(max_length=50)] | None = None
    links: Refs | None = None
    clientMessageId: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None


class EditMessageIn(Payload):
    messageId: Ref
    channelId: Ref
    text: Text
    attachments: Refs | None = None
    mentions: Annotated[list[Ref], Field(max_length=50)] | None = None
    links: Refs | None = None


class MessageRef(Payload):
    messageId: Ref
    channelId: Ref


class ReactionIn(MessageRef):
    emoji: m.Emoji


class CreateThreadIn(Payload):
    channelId: Ref
    messageId: Ref | None = None
    parentMessageId: Ref | None = None
    name: Annotated[str, StringConstraints(max_length=120)] | None = None

    @model_validator(mode="after")
    def _root(self) -> CreateThreadIn:
        if not (self.messageId or self.parentMessageId):
            raise ValueError("messageId (the thread's root message) is required")
        return self


class ThreadRef(Payload):
    channelId: Ref
    threadId: Ref


class SyncRequestIn(Payload):
    channelId: Ref
    lastSeq: m.Seq | None = None
    lastTimestamp: Annotated[str, StringConstraints(max_length=64)] | None = None
    limit: int = Field(default=200, ge=1, le=500)


@dataclass
class Joined:
    """This replica's record of which channel and thread rooms each local /chat socket is in."""

    channels: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    threads: defaultdict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))  # thread -> channel
    typing: dict[tuple[str, str], asyncio.TimerHandle] = field(default_factory=dict)
    expiring: TaskSet = field(default_factory=TaskSet)


def register(router: SocketRouter) -> None:
    gw = router.gw
    joined = Joined()

    def principal_of(conn: Connection) -> Any:
        assert conn.principal is not None
        return conn.principal

    async def enter_channel(conn: Connection, channel_id: str) -> None:
        principal = principal_of(conn)
        # bind first, so the socket is only in the room once the channel's events can reach this replica
        await gw.delivery.interest.add(conn.sid, interest_pattern(principal.tenant, "conv", channel_id))
        await gw.sio.enter_room(conn.sid, scoped(principal.tenant, channel_room(channel_id)), namespace=NAMESPACE)
        joined.channels[conn.sid].add(channel_id)

    async def announce(conn: Connection, event: str, channel_id: str, extra: dict[str, Any] | None = None) -> None:
        principal = principal_of(conn)
        body = {
            "userId": principal.user_id,
            "username": principal.username,
            "channelId": channel_id,
            "timestamp": utcnow_iso(),
            **(extra or {}),
        }
        # the gateway's own event: through the Redis manager to the channel's sockets on every replica
        room = scoped(principal.tenant, channel_room(channel_id))
        await gw.sio.emit(event, body, room=room, skip_sid=conn.sid, namespace=NAMESPACE)

    def require_joined(conn: Connection, channel_id: str) -> None:
        if channel_id not in joined.channels.get(conn.sid, ()):
            raise RelayError(ErrorCode.PERMISSION_DENIED, f"join channel {channel_id} first", field="channelId")

    async def on_principal(gw_: Gateway, conn: Connection) -> None:
        if conn.namespace != NAMESPACE:
            return
        try:
            found = await gw.bus.call(principal_of(conn), m.LIST_CHANNELS, {})
            for channel in found["channels"]:
                await enter_channel(conn, channel["conversationId"])
        except Exception:
            # the socket stays usable: `join_channel` still works once the message service answers
            log.warning("channels.auto_join_failed", sid=conn.sid, exc_info=True)

    async def on_disconnect(gw_: Gateway, conn: Connection) -> None:
        if conn.namespace != NAMESPACE:
            return
        for channel_id in list(joined.channels.get(conn.sid, ())):
            await stop_typing(conn, channel_id)
        joined.channels.pop(conn.sid, None)
        joined.threads.pop(conn.sid, None)

    async def on_members_added(envelope: Envelope) -> None:
        """Each local /chat socket of a new member enters the channel's room (each replica for its own)."""
        if envelope.type != m.MEMBERS_ADDED:
            return
        channel_id = envelope.data["conversationId"]
        for user_id in envelope.data.get("userIds", []):
            room = scoped(envelope.tenant, user_room(user_id))
            for sid, _ in list(gw.sio.manager.get_participants(NAMESPACE, room)):
                conn = gw.connections.get(sid)
                if conn is not None and conn.principal is not None and channel_id not in joined.channels[sid]:
                    await enter_channel(conn, channel_id)

    async def on_presence_changed(envelope: Envelope) -> None:
        """seed-000 `user_presence` to the user's channels: each replica to its own sockets there, once each."""
        if envelope.type != p.CHANGED:
            return
        prefix = scoped(envelope.tenant, channel_room(""))
        if not any(room and room.startswith(prefix) for room in gw.sio.manager.rooms.get(NAMESPACE, {})):
            return  # no local /chat socket of this tenant is in any channel: nobody here to tell
        member = Principal(user_id=envelope.data["userId"], tenant=envelope.tenant)
        found = await gw.bus.call(member, m.LIST_CHANNELS, {})
        rooms = [scoped(envelope.tenant, channel_room(c["conversationId"])) for c in found["channels"]]
        if rooms:  # a list of rooms: a socket in several of them still gets the event once
            payload = user_presence_payload(envelope.data)
            skip = None
            if not shown_to_restricted(envelope.data["user"]):  # the rule: restricted viewers never see a visitor
                restricted = scoped(envelope.tenant, RESTRICTED_ROOM)
                skip = [sid for sid, _ in gw.sio.manager.get_participants(NAMESPACE, restricted)]
            await gw.sio.emit(
                "user_presence", payload, room=rooms, skip_sid=skip, namespace=NAMESPACE, ignore_queue=True
            )

    gw.delivery.listeners.append(on_members_added)
    gw.delivery.listeners.append(on_presence_changed)
    gw.on_principal.append(on_principal)
    gw.on_disconnect.append(on_disconnect)

    async def stop_typing(conn: Connection, channel_id: str) -> None:
        timer = joined.typing.pop((conn.sid, channel_id), None)
        if timer is not None:
            timer.cancel()
            await announce(conn, "user_typing", channel_id, {"isTyping": False})

    @router.on("join_channel", ChannelRef, namespace=NAMESPACE, limit="join")
    async def join_channel(gw: Gateway, conn: Connection, ref: ChannelRef) -> dict[str, Any]:
        """Join `channel:{id}` (members; anyone for a public channel); others hear `user_joined_channel`."""
        # the message service decides: members, or anyone for a public channel (raises otherwise)
        await gw.bus.call(principal_of(conn), m.JOIN_CHANNEL, {"conversationId": ref.channelId})
        await enter_channel(conn, ref.channelId)
        await announce(conn, "user_joined_channel", ref.channelId)
        return {"success": True, "channelId": ref.channelId}

    @router.on("leave_channel", ChannelRef, namespace=NAMESPACE)
    async def leave_channel(gw: Gateway, conn: Connection, ref: ChannelRef) -> dict[str, Any]:
        """Leave `channel:{id}` and its thread rooms on this socket; others hear `user_left_channel`."""
        principal = principal_of(conn)
        if ref.channelId in joined.channels.get(conn.sid, ()):
            await stop_typing(conn, ref.channelId)
            await announce(conn, "user_left_channel", ref.channelId)
            await gw.sio.leave_room(
                conn.sid, scoped(principal.tenant, channel_room(ref.channelId)), namespace=NAMESPACE
            )
            threads = joined.threads.get(conn.sid, {})
            for thread_id in [t for t, c in threads.items() if c == ref.channelId]:
                await gw.sio.leave_room(conn.sid, scoped(principal.tenant, thread_room(thread_id)), namespace=NAMESPACE)
                del threads[thread_id]
            joined.channels[conn.sid].discard(ref.channelId)
            await gw.delivery.interest.remove(conn.sid, interest_pattern(principal.tenant, "conv", ref.channelId))
        return {"success": True, "channelId": ref.channelId}

    @router.on("send_message", SendMessageIn, namespace=NAMESPACE, limit="message")
    async def send_message(gw: Gateway, conn: Connection, body: SendMessageIn) -> dict[str, Any]:
        """Send to a channel (thread reply with `threadId`); everyone in it gets `new_message` with `seq`."""
        data: dict[str, Any] = {
            "conversationId": body.channelId,
            "content": body.text,
            "clientMessageId": body.clientMessageId or f"sock-{uuid.uuid4()}",
            "threadId": body.threadId,
            "parentMessageId": body.parentMessageId,
            "attachments": body.attachments or [],
            "mentions": body.mentions or [],
            "links": body.links or [],
        }
        message = await gw.bus.call(principal_of(conn), m.SEND_MESSAGE, data)
        await stop_typing(conn, body.channelId)
        return {
            "success": True,
            "messageId": message["messageId"],
            "seq": message["seq"],
            "clientMessageId": message.get("clientMessageId"),
            "message": channel_message(message),
        }

    @router.on("edit_message", EditMessageIn, namespace=NAMESPACE, limit="message")
    async def edit_message(gw: Gateway, conn: Connection, body: EditMessageIn) -> dict[str, Any]:
        """Edit your own message (the previous text stays in its edit history); the channel gets `message_edited`."""
        data = {
            "conversationId": body.channelId,
            "messageId": body.messageId,
            "content": body.text,
            **{
                k: v
                for k, v in (("attachments", body.attachments), ("mentions", body.mentions), ("links", body.links))
                if v is not None
            },
        }
        message = await gw.bus.call(principal_of(conn), m.EDIT_MESSAGE, data)
        return {
            "success": True,
            "messageId": body.messageId,
            "seq": message["seq"],
            "editedAt": message.get("editedAt"),
        }

    @router.on("delete_message", MessageRef, namespace=NAMESPACE, limit="message")
    async def delete_message(gw: Gateway, conn: Connection, body: MessageRef) -> dict[str, Any]:
        """Delete a message (author or moderator): erased for every reader; the channel gets `message_deleted`."""
        data = {"conversationId": body.channelId, "messageId": body.messageId}
        deleted = await gw.bus.call(principal_of(conn), m.DELETE_MESSAGE, data)
        return {"success": True, "messageId": body.messageId, "seq": deleted["seq"]}

    async def react(conn: Connection, body: ReactionIn, action: str) -> dict[str, Any]:
        data = {"conversationId": body.channelId, "messageId": body.messageId, "emoji": body.emoji, "action": action}
        result = await gw.bus.call(principal_of(conn), m.REACT_MESSAGE, data)
        return {"success": True, "messageId": body.messageId, "emoji": body.emoji, "reactions": result["reactions"]}

    @router.on("add_reaction", ReactionIn, namespace=NAMESPACE, limit="message")
    async def add_reaction(gw: Gateway, conn: Connection, body: ReactionIn) -> dict[str, Any]:
        """Add your reaction to a message (once per emoji); the channel gets `reaction_added`."""
        return await react(conn, body, "add")

    @router.on("remove_reaction", ReactionIn, namespace=NAMESPACE, limit="message")
    async def remove_reaction(gw: Gateway, conn: Connection, body: ReactionIn) -> dict[str, Any]:
        """Remove your reaction; the channel gets `reaction_removed`."""
        return await react(conn, body, "remove")

    @router.on("typing_start", ChannelRef, namespace=NAMESPACE, limit="typing")
    async def typing_start(gw: Gateway, conn: Connection, ref: ChannelRef) -> dict[str, Any]:
        """Tell the channel's other sockets you are typing (`user_typing`); ends by itself after 5 s."""
        require_joined(conn, ref.channelId)
        key = (conn.sid, ref.channelId)
        previous = joined.typing.pop(key, None)
        if previous is not None:
            previous.cancel()
        else:
            await announce(conn, "user_typing", ref.channelId, {"isTyping": True})

        def expire() -> None:
            # a typing state nobody refreshes ends by itself, so no client shows "typing…" forever
            joined.expiring.spawn(stop_typing(conn, ref.channelId))

        joined.typing[key] = asyncio.get_running_loop().call_later(TYPING_EXPIRES_SECONDS, expire)
        return {"success": True, "channelId": ref.channelId}

    @router.on("typing_stop", ChannelRef, namespace=NAMESPACE, limit="typing")
    async def typing_stop(gw: Gateway, conn: Connection, ref: ChannelRef) -> dict[str, Any]:
        """Tell the channel's other sockets you stopped typing (`user_typing` with isTyping false)."""
        require_joined(conn, ref.channelId)
        await stop_typing(conn, ref.channelId)
        return {"success": True, "channelId": ref.channelId}

    async def enter_thread(conn: Connection, channel_id: str, thread_id: str) -> None:
        principal = principal_of(conn)
        await gw.delivery.interest.add(conn.sid, interest_pattern(principal.tenant, "conv", channel_id))
        await gw.sio.enter_room(conn.sid, scoped(principal.tenant, thread_room(thread_id)), namespace=NAMESPACE)
        joined.threads[conn.sid][thread_id] = channel_id

    @router.on("create_thread", CreateThreadIn, namespace=NAMESPACE, limit="message")
    async def create_thread(gw: Gateway, conn: Connection, body: CreateThreadIn) -> dict[str, Any]:
        """Start a thread on a message (thread id = its id), join `thread:{id}`; the channel gets `thread_created`."""
        root = body.messageId or body.parentMessageId
        data = {"conversationId": body.channelId, "messageId": root, "name": body.name}
        thread = await gw.bus.call(principal_of(conn), m.CREATE_THREAD, data)
        await enter_thread(conn, body.channelId, thread["threadId"])
        return {
            "success": True,
            "threadId": thread["threadId"],
            "channelId": body.channelId,
            "parentMessageId": thread["parentMessageId"],
            "name": thread.get("name"),
        }

    @router.on("join_thread", ThreadRef, namespace=NAMESPACE, limit="join")
    async def join_thread(gw: Gateway, conn: Connection, ref: ThreadRef) -> dict[str, Any]:
        """Join `thread:{threadId}` of a channel you may read."""
        await gw.bus.call(principal_of(conn), m.CHECK_ACCESS, {"conversationId": ref.channelId})
        await enter_thread(conn, ref.channelId, ref.threadId)
        return {"success": True, "threadId": ref.threadId, "channelId": ref.channelId}

    @router.on("sync_request", SyncRequestIn, namespace=NAMESPACE, limit="sync")
    async def sync_request(gw: Gateway, conn: Connection, body: SyncRequestIn) -> dict[str, Any]:
        """What you missed after `lastSeq` (or `lastTimestamp`), and with both what changed before; `sync_response`."""
        data: dict[str, Any] = {"conversationId": body.channelId, "limit": body.limit}
        if body.lastSeq is not None:
            data["afterSeq"] = body.lastSeq
            if body.lastTimestamp is not None:  # the `timestamp` of the previous sync_response
                data["changedSince"] = body.lastTimestamp
        elif body.lastTimestamp is not None:
            data["since"] = body.lastTimestamp
        else:
            data["afterSeq"] = 0
        result = await gw.bus.call(principal_of(conn), m.SYNC_MESSAGES, data)
        response = {
            "channelId": body.channelId,
            "messages": [channel_message(x) for x in result["messages"]],
            "changed": [channel_message(x) for x in result["changed"]],
            "deleted": result["deleted"],
            "lastSeq": result["lastSeq"],
            "hasMore": result["hasMore"],
            "timestamp": result["syncedAt"],
        }
        await gw.sio.emit("sync_response", response, to=conn.sid, namespace=NAMESPACE)
        return {"success": True, **response}
