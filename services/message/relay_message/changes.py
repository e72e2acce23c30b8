"""Changes to stored messages: edit (author only, history kept), delete (author or moderator),
reactions, threads, and the sync a reconnecting client asks for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from relay_contracts import Envelope, ErrorCode, RelayError
from relay_contracts import messages as m
from relay_contracts.envelope import iso

from relay_message import domain
from relay_message.handlers import (
    Deps,
    Handler,
    _actor,
    _readable,
    announce,
    check_text_length,
    parse_instant,
    visible_message,
)


async def edit_message(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = m.EditMessage.model_validate(env.data)
    user, _ = _actor(env)
    check_text_length(deps, cmd.content)
    if not cmd.content.strip():
        raise RelayError(ErrorCode.VALIDATION_ERROR, "content is required", field="content")
    await _readable(deps, env, cmd.conversationId)
    doc = await visible_message(deps, env, cmd.conversationId, cmd.messageId)
    if doc.get("senderId") != user:
        raise RelayError(ErrorCode.PERMISSION_DENIED, "only the author edits a message", field="messageId")
    now = datetime.now(UTC)
    previous = {
        "content": doc.get("content", ""),
        "attachments": doc.get("attachments") or [],
        "mentions": doc.get("mentions") or [],
        "links": doc.get("links") or [],
        "editedAt": now,
        "editedBy": user,
    }
    changes: dict[str, Any] = {"content": cmd.content, "updatedAt": now}
    for field in ("attachments", "mentions", "links"):
        value = getattr(cmd, field)
        if value is not None:
            changes[field] = list(dict.fromkeys(value)) if field == "mentions" else list(value)
    if not await deps.messages.edit(env.tenant, cmd.messageId, changes, previous):
        raise RelayError(ErrorCode.NOT_FOUND, f"message {cmd.messageId} not found", field="messageId")
    updated = await visible_message(deps, env, cmd.conversationId, cmd.messageId)
    public = domain.public_message(updated)
    await announce(deps, env, "conv", cmd.conversationId, m.MESSAGE_UPDATED, public)
    await deps.conversations.revise_preview(env.tenant, cmd.conversationId, cmd.messageId, cmd.content)
    return public


async def delete_message(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = m.DeleteMessage.model_validate(env.data)
    user, roles = _actor(env)
    conversation = await _readable(deps, env, cmd.conversationId)
    doc = await visible_message(deps, env, cmd.conversationId, cmd.messageId)
    if not domain.can_delete(conversation, doc, user, roles):
        raise RelayError(ErrorCode.PERMISSION_DENIED, "only the author or a moderator deletes a message")
    now = datetime.now(UTC)
    if not await deps.messages.tombstone(env.tenant, cmd.messageId, user, now):
        raise RelayError(ErrorCode.NOT_FOUND, f"message {cmd.messageId} not found", field="messageId")
    data = {
        "conversationId": cmd.conversationId,
        "messageId": cmd.messageId,
        "seq": doc["seq"],
        "threadId": doc.get("threadId"),
        "deletedBy": user,
        "deletedAt": iso(now),
    }
    await announce(deps, env, "conv", cmd.conversationId, m.MESSAGE_DELETED, data)
    await deps.conversations.revise_preview(env.tenant, cmd.conversationId, cmd.messageId, "")
    return data


async def react(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = m.ReactToMessage.model_validate(env.data)
    user, _ = _actor(env)
    await _readable(deps, env, cmd.conversationId)
    doc = await visible_message(deps, env, cmd.conversationId, cmd.messageId)
    now = datetime.now(UTC)
    if cmd.action == "add":
        changed = await deps.messages.add_reaction(
            env.tenant, cmd.messageId, {"userId": user, "emoji": cmd.emoji, "at": now}
        )
    else:
        changed = await deps.messages.remove_reaction(env.tenant, cmd.messageId, user, cmd.emoji)
    updated = await visible_message(deps, env, cmd.conversationId, cmd.messageId)
    data = {
        "conversationId": cmd.conversationId,
        "messageId": cmd.messageId,
        "seq": doc["seq"],
        "userId": user,
        "emoji": cmd.emoji,
        "action": cmd.action,
        "changed": changed,
        "reactions": domain.reaction_summary(updated.get("reactions") or []),
        "at": iso(now),
    }
    if changed:  # adding a reaction twice (or removing one that is not there) announces nothing
        await announce(deps, env, "conv", cmd.conversationId, m.REACTION_CHANGED, data)
    return data


async def create_thread(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = m.CreateThread.model_validate(env.data)
    user, _ = _actor(env)
    await _readable(deps, env, cmd.conversationId)
    doc = await visible_message(deps, env, cmd.conversationId, cmd.messageId)
    if doc.get("threadId"):
        raise RelayError(ErrorCode.VALIDATION_ERROR, "a thread reply cannot start a thread", field="messageId")
    now = datetime.now(UTC)
    created = await deps.messages.mark_thread(
        env.tenant, cmd.messageId, {"name": cmd.name, "createdBy": user, "createdAt": now}
    )
    root = await visible_message(deps, env, cmd.conversationId, cmd.messageId)
    data = {
        "conversationId": cmd.conversationId,
        "threadId": cmd.messageId,
        "parentMessageId": cmd.messageId,
        "seq": root["seq"],
        "name": root["thread"].get("name"),
        "createdBy": root["thread"].get("createdBy"),
        "createdAt": iso(root["thread"]["createdAt"]),
        "created": created,
    }
    if created:
        await announce(deps, env, "conv", cmd.conversationId, m.THREAD_CREATED, data)
    return data


async def sync_messages(env: Envelope, deps: Deps) -> dict[str, Any]:
    """What a reconnecting client missed after `afterSeq` (or `since`): messages, and seqs deleted since."""
    cmd = m.SyncMessages.model_validate(env.data)
    conversation = await _readable(deps, env, cmd.conversationId)
    if cmd.afterSeq is None and cmd.since is None:
        raise RelayError(ErrorCode.VALIDATION_ERROR, "lastSeq or since is required", field="lastSeq")
    synced_at = datetime.now(UTC)  # the client's next changedSince: nothing changed after it is missed
    date_from = parse_instant(cmd.since, "since") if cmd.since is not None and cmd.afterSeq is None else None
    docs, has_more = await deps.messages.since(
        env.tenant, cmd.conversationId, after_seq=cmd.afterSeq, date_from=date_from, limit=cmd.limit
    )
    # internal notes never sync (`since` leaves them out): the channel dialect has none
    live = [domain.public_message(d) for d in docs if not d.get("deleted")]
    deleted = [{"messageId": d["_id"], "seq": d["seq"]} for d in docs if d.get("deleted")]
    last = docs[-1]["seq"] if docs else (cmd.afterSeq or 0)
    changed: list[dict[str, Any]] = []
    if cmd.changedSince is not None and cmd.afterSeq is not None:
        since = parse_instant(cmd.changedSince, "changedSince")
        older = await deps.messages.changed_since(
            env.tenant, cmd.conversationId, up_to_seq=cmd.afterSeq, since=since, limit=cmd.limit
        )
        changed = [domain.public_message(d) for d in older if not d.get("deleted")]
        deleted = [{"messageId": d["_id"], "seq": d["seq"]} for d in older if d.get("deleted")] + deleted
    return {
        "conversationId": cmd.conversationId,
        "messages": live,
        "changed": changed,
        "syncedAt": iso(synced_at),
        "deleted": deleted,
        "lastSeq": last,
        "latestSeq": conversation.get("lastSeq", 0),
        "hasMore": has_more,
    }


HANDLERS: dict[str, Handler] = {
    m.EDIT_MESSAGE: edit_message,
    m.DELETE_MESSAGE: delete_message,
    m.REACT_MESSAGE: react,
    m.CREATE_THREAD: create_thread,
    m.SYNC_MESSAGES: sync_messages,
}
