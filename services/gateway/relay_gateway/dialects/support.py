"""seed-001 support chat: `message:new` to `chat:{id}` (or `chat:{id}:commercial` for notes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from relay_contracts import Envelope
from relay_contracts import messages as m

from relay_gateway.dialects import Delivery, Table
from relay_gateway.rooms import support_agents_room, support_room

NAMESPACE = "/"


def message_payload(msg: dict[str, Any]) -> dict[str, Any]:
    """seed-001's message shape plus `seq` (also the body of POST /v2/messages and history)."""
    out = {
        "messageId": msg["messageId"],
        "chatId": msg["conversationId"],
        "senderId": msg["senderId"],
        "senderName": msg.get("senderName"),
        "content": msg["content"],
        "type": msg["type"],
        "isInternal": msg["isInternal"],
        "isFirstResponse": msg["isFirstResponse"],
        "sentAt": msg["createdAt"],
        "seq": msg["seq"],
        "clientMessageId": msg.get("clientMessageId"),
    }
    if msg.get("attachment"):
        out["attachment"] = msg["attachment"]
    return out


def _message_new(env: Envelope) -> Iterator[Delivery]:
    msg = env.data
    cid = msg["conversationId"]
    # agents sit in both rooms; each message goes to exactly one of them, so nobody gets it twice
    room = support_agents_room(cid) if msg.get("isInternal") else support_room(cid)
    yield Delivery(NAMESPACE, room, "message:new", message_payload(msg))


def _chat_status(env: Envelope) -> Iterator[Delivery]:
    cid = env.data["conversationId"]
    payload = {"chatId": cid, "status": env.data["status"], "timestamp": env.data.get("changedAt", env.occurredAt)}
    yield Delivery(NAMESPACE, support_room(cid), "chat:status", payload)


TABLE: Table = {
    m.MESSAGE_CREATED: [_message_new],
    m.CONVERSATION_STATUS_CHANGED: [_chat_status],
}
