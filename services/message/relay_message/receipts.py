"""Read receipts (seed-003 `marcar_leido`): store who read what, recount the reader's unread, announce it.

Also where a message lives (`message.locate`), for dialects that name only the message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from relay_contracts import Envelope, ErrorCode, RelayError
from relay_contracts import messages as m
from relay_contracts import receipts as r
from relay_contracts.envelope import iso

from relay_message import domain
from relay_message.handlers import Deps, Handler, _actor, _readable, announce, visible_message


async def mark_read(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = r.MarkRead.model_validate(env.data)
    user, roles = _actor(env)
    conversation = await _readable(deps, env, cmd.conversationId)
    if cmd.messageId is not None:
        await visible_message(deps, env, cmd.conversationId, cmd.messageId)
    agent = domain.is_agent(roles)
    now = datetime.now(UTC)
    changed = await deps.messages.mark_read(
        env.tenant, cmd.conversationId, user, now, message_id=cmd.messageId, include_internal=agent
    )
    # recount rather than decrement: exact whatever raced with us, and repairs any drift
    unread = await deps.messages.unread_count(env.tenant, cmd.conversationId, user, include_internal=agent)
    if domain.participant(conversation, user) is not None:
        await deps.conversations.set_unread(env.tenant, cmd.conversationId, user, unread)
    read = r.MessageRead(
        conversationId=cmd.conversationId,
        readerId=user,
        messageIds=tuple(changed),
        all=cmd.messageId is None,
        readAt=iso(now),
        lastSeq=int(conversation.get("lastSeq", 0)),
    )
    if changed:  # marking again what is already read is a no-op, announced to nobody
        await announce(deps, env, "conv", cmd.conversationId, r.MESSAGE_READ, read.model_dump(mode="json"))
    return {**read.model_dump(mode="json"), "unreadCount": unread}


async def mark_conversation_read(env: Envelope, deps: Deps) -> dict[str, Any]:
    """Support's `POST /v2/chats/{id}/read`: everything read by the caller (receipts and count); the chat."""
    await mark_read(env, deps)
    user, roles = _actor(env)
    conversation = await _readable(deps, env, str(env.data["conversationId"]))
    return domain.public_conversation(conversation, viewer=user, viewer_is_agent=domain.is_agent(roles))


async def locate_message(env: Envelope, deps: Deps) -> dict[str, Any]:
    """The conversation of a message the caller may read; NOT_FOUND for anything else (no probing)."""
    cmd = m.LocateMessage.model_validate(env.data)
    conversation_id = await deps.messages.conversation_of(env.tenant, cmd.messageId)
    if conversation_id is None:
        raise RelayError(ErrorCode.NOT_FOUND, f"message {cmd.messageId} not found", field="messageId")
    try:
        await _readable(deps, env, conversation_id)
        await visible_message(deps, env, conversation_id, cmd.messageId)
    except RelayError as exc:
        raise RelayError(ErrorCode.NOT_FOUND, f"message {cmd.messageId} not found", field="messageId") from exc
    return {"messageId": cmd.messageId, "conversationId": conversation_id}


HANDLERS: dict[str, Handler] = {
    r.MARK_READ: mark_read,
    m.MARK_CONVERSATION_READ: mark_conversation_read,
    m.LOCATE_MESSAGE: locate_message,
}
