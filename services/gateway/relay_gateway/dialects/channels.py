"""seed-000 enterprise chat on `/chat`: `new_message` to `channel:{id}` (and `thread:{threadId}`), edits,
deletions, reactions, threads, and `mention_received` to every socket of a mentioned member."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from relay_contracts import Envelope
from relay_contracts import messages as m

from relay_gateway.dialects import Delivery, Table
from relay_gateway.rooms import channel_room, thread_room, user_room

NAMESPACE = "/chat"


def channel_message(msg: dict[str, Any]) -> dict[str, Any]:
    """A stored message as seed-000 clients read it (`message.id`, `message.content.text`, `message.channelId`)."""
    return {
        "id": msg["messageId"],
        "messageId": msg["messageId"],
        "channelId": msg["conversationId"],
        "seq": msg["seq"],
        "authorId": msg["senderId"],
        "type": msg.get("type", "text"),
        "text": msg.get("content", ""),
        "content": {
            "text": msg.get("content", ""),
            "attachments": msg.get("attachments", []),
            "mentions": msg.get("mentions", []),
            "links": msg.get("links", []),
        },
        "threadId": msg.get("threadId"),
        "parentMessageId": msg.get("parentMessageId"),
        "thread": msg.get("thread"),
        "reactions": msg.get("reactions", []),
        "edited": msg.get("edited", False),
        "editedAt": msg.get("editedAt"),
        "editHistory": msg.get("editHistory", []),
        "clientMessageId": msg.get("clientMessageId"),
        "createdAt": msg["createdAt"],
    }


def author(user_id: str | None, username: str | None, avatar: str | None = None) -> dict[str, Any]:
    return {"id": user_id, "username": username, "avatar": avatar}


def _rooms(conversation_id: str, thread_id: str | None) -> str | tuple[str, ...]:
    # one delivery to both rooms: a socket in the channel and the thread gets it once
    return (channel_room(conversation_id), thread_room(thread_id)) if thread_id else channel_room(conversation_id)


def _actor(env: Envelope) -> dict[str, Any]:
    if env.actor is None:
        return author(None, None)
    return author(env.actor.userId, env.actor.username, env.actor.avatar)


def _sender(env: Envelope, msg: dict[str, Any]) -> dict[str, Any]:
    """The message's author; their avatar is the token's of whoever sent it (the event's actor)."""
    avatar = env.actor.avatar if env.actor is not None and env.actor.userId == msg["senderId"] else None
    return author(msg["senderId"], msg.get("senderName"), avatar)


def _new_message(env: Envelope) -> Iterator[Delivery]:
    msg = env.data
    if msg.get("isInternal"):
        return  # agents' notes live in the support dialect's agents room only
    payload = {
        "message": channel_message(msg),
        "author": _sender(env, msg),
        "channelId": msg["conversationId"],
        "seq": msg["seq"],
    }
    yield Delivery(NAMESPACE, _rooms(msg["conversationId"], msg.get("threadId")), "new_message", payload)


def _message_edited(env: Envelope) -> Iterator[Delivery]:
    msg = env.data
    if msg.get("isInternal"):
        return
    payload = {
        "messageId": msg["messageId"],
        "channelId": msg["conversationId"],
        "seq": msg["seq"],
        "text": msg.get("content", ""),
        "editedAt": msg.get("editedAt") or env.occurredAt,
        "editedBy": _actor(env),
        "message": channel_message(msg),
    }
    yield Delivery(NAMESPACE, _rooms(msg["conversationId"], msg.get("threadId")), "message_edited", payload)


def _message_deleted(env: Envelope) -> Iterator[Delivery]:
    data = env.data
    payload = {
        "messageId": data["messageId"],
        "channelId": data["conversationId"],
        "seq": data["seq"],
        "threadId": data.get("threadId"),
        "deletedAt": data["deletedAt"],
        "deletedBy": _actor(env),
    }
    yield Delivery(NAMESPACE, _rooms(data["conversationId"], data.get("threadId")), "message_deleted", payload)


def _reaction(env: Envelope) -> Iterator[Delivery]:
    data = env.data
    actor = _actor(env)
    payload = {
        "messageId": data["messageId"],
        "channelId": data["conversationId"],
        "seq": data["seq"],
        "emoji": data["emoji"],
        "userId": data["userId"],
        "username": actor["username"],
        "reactions": data.get("reactions", []),
        "timestamp": data.get("at", env.occurredAt),
    }
    event = "reaction_added" if data["action"] == "add" else "reaction_removed"
    yield Delivery(NAMESPACE, channel_room(data["conversationId"]), event, payload)


def _thread_created(env: Envelope) -> Iterator[Delivery]:
    data = env.data
    payload = {
        "threadId": data["threadId"],
        "channelId": data["conversationId"],
        "parentMessageId": data["parentMessageId"],
        "seq": data["seq"],
        "name": data.get("name"),
        "createdBy": _actor(env),
        "createdAt": data["createdAt"],
    }
    yield Delivery(NAMESPACE, channel_room(data["conversationId"]), "thread_created", payload)


def _mention(env: Envelope) -> Iterator[Delivery]:
    msg = env.data
    payload = {
        "messageId": msg["messageId"],
        "text": msg.get("content", ""),
        "author": _sender(env, msg),
        "channelId": msg["conversationId"],
        "threadId": msg.get("threadId"),
        "seq": msg["seq"],
        "timestamp": msg["createdAt"],
    }
    yield Delivery(NAMESPACE, user_room(msg["mentionedUserId"]), "mention_received", payload)


TABLE: Table = {
    m.MESSAGE_CREATED: [_new_message],
    m.MESSAGE_UPDATED: [_message_edited],
    m.MESSAGE_DELETED: [_message_deleted],
    m.REACTION_CHANGED: [_reaction],
    m.THREAD_CREATED: [_thread_created],
    m.MESSAGE_MENTIONED: [_mention],
}
