"""One async function per command. No broker, HTTP or socket objects in here."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError
from relay_contracts import Envelope, ErrorCode, RelayError
from relay_contracts import messages as m
from relay_contracts.claims import Claims, MemoryClaims
from relay_contracts.deadline import CommitDelays
from relay_contracts.envelope import iso
from relay_contracts.routing import Scope, event_key

from relay_message import domain
from relay_message.adapters.files import FileRepo
from relay_message.adapters.repo import ConversationRepo, MessageRepo
from relay_message.ingest import SendPipeline

Publish = Callable[[str, Envelope], Awaitable[None]]
PublishMany = Callable[[list[tuple[str, Envelope]]], Awaitable[None]]


class Handler(Protocol):
    """A command handler: bootstrap binds `deps` by name (functools.partial)."""

    def __call__(self, env: Envelope, deps: Deps) -> Awaitable[Any]: ...


@dataclass
class Deps:
    conversations: ConversationRepo
    messages: MessageRepo
    publish: Publish  # (routing key, event) on relay.events, confirmed
    max_text_length: int = 4000
    files: FileRepo | None = None
    publish_batch: PublishMany | None = None  # events in order, confirms awaited together
    sends: SendPipeline = dataclasses.field(default_factory=SendPipeline)
    # who wins when a caller's timer and a write race (relay_contracts.claims); Redis in a deployment
    claims: Claims = dataclasses.field(default_factory=MemoryClaims)
    delays: CommitDelays = dataclasses.field(default_factory=CommitDelays)  # test only (TEST_COMMIT_DELAYS)

    async def publish_many(self, events: list[tuple[str, Envelope]]) -> None:
        if self.publish_batch is not None:
            await self.publish_batch(events)
            return
        for key, event in events:
            await self.publish(key, event)


def _actor(env: Envelope) -> tuple[str, tuple[str, ...]]:
    if env.actor is None:
        raise RelayError(ErrorCode.AUTH_REQUIRED, "command has no actor")
    return env.actor.userId, tuple(r.lower() for r in env.actor.roles)


async def announce(deps: Deps, env: Envelope, scope: Scope, target: str, event_type: str, data: dict[str, Any]) -> None:
    """Publish the domain event `event_type` this command caused, routed to `scope`/`target`, after its write."""
    await deps.publish(event_key(env.tenant, scope, target, event_type), env.caused(event_type, data))


def check_text_length(deps: Deps, content: str) -> None:
    if len(content) > deps.max_text_length:
        raise RelayError(
            ErrorCode.VALIDATION_ERROR, f"content exceeds {deps.max_text_length} characters", field="content"
        )


async def _readable(deps: Deps, env: Envelope, conversation_id: str) -> dict[str, Any]:
    user, roles = _actor(env)
    conversation = await deps.conversations.get(env.tenant, conversation_id)
    if conversation is None:
        raise RelayError(ErrorCode.NOT_FOUND, f"conversation {conversation_id} not found", field="chatId")
    if not domain.can_read(conversation, user, roles):
        raise RelayError(ErrorCode.PERMISSION_DENIED, "not a member of this conversation")
    return conversation


async def visible_message(
    deps: Deps, env: Envelope, conversation_id: str, message_id: str, *, field: str = "messageId"
) -> dict[str, Any]:
    """A message of the conversation the actor may see: NOT_FOUND alike for a deleted one, a note (to
    non-agents) and one that never existed, so no answer tells a visitor that a note exists."""
    _, roles = _actor(env)
    doc = await deps.messages.get(env.tenant, conversation_id, message_id)
    if doc is None or doc.get("deleted") or (doc.get("isInternal") and not domain.is_agent(roles)):
        raise RelayError(ErrorCode.NOT_FOUND, f"message {message_id} not found in this conversation", field=field)
    return doc


async def create_conversation(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = m.CreateConversation.model_validate(env.data)
    user, roles = _actor(env)
    now = datetime.now(UTC)
    doc = domain.new_conversation(
        tenant=env.tenant,
        conversation_id=cmd.conversationId,
        type_=cmd.type,
        subject=cmd.subject,
        status=domain.PENDING if cmd.type == domain.SUPPORT else domain.IN_PROGRESS,
        participants=domain.build_participants(user, domain.creator_role(roles), cmd.participants, now),
        created_by=user,
        at=now,
    )
    if cmd.description:
        doc["description"] = cmd.description
    return await open_conversation(
        deps, env, doc, RelayError(ErrorCode.CONFLICT, f"conversation {cmd.conversationId} already exists")
    )


async def open_conversation(deps: Deps, env: Envelope, doc: dict[str, Any], conflict: RelayError) -> dict[str, Any]:
    """Store a new conversation and announce it (`conflict` when its id is taken); its public form."""
    if not await deps.conversations.insert(doc):
        raise conflict
    public = domain.public_conversation(doc)
    await announce(deps, env, "tenant", "_", m.CONVERSATION_CREATED, public)
    return public


async def check_access(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = m.CheckAccess.model_validate(env.data)
    user, roles = _actor(env)
    conversation = await _readable(deps, env, cmd.conversationId)
    public = domain.public_conversation(conversation, viewer=user, viewer_is_agent=domain.is_agent(roles))
    # lets a gateway let the next agents in without asking again (a join storm into one chat)
    return {**public, "agentsMayRead": domain.agents_may_read(conversation)}


async def list_conversations(env: Envelope, deps: Deps) -> dict[str, Any]:
    """The caller's conversations (agents: also the tenant's support queue), newest activity first."""
    cmd = m.ListConversations.model_validate(env.data)
    user, roles = _actor(env)
    agent = domain.is_agent(roles)
    docs = await deps.conversations.list_for(
        env.tenant, user, include_support_queue=agent and not cmd.memberOnly, status=cmd.status, type_=cmd.type
    )
    return {"conversations": [domain.public_conversation(d, viewer=user, viewer_is_agent=agent) for d in docs]}


async def close_conversation(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = m.CloseConversation.model_validate(env.data)
    user, roles = _actor(env)
    conversation = await _readable(deps, env, cmd.conversationId)
    if not domain.can_close(conversation, roles):
        raise RelayError(ErrorCode.PERMISSION_DENIED, "only agents close support chats")
    now = datetime.now(UTC)
    if not await deps.conversations.close(env.tenant, cmd.conversationId, user, now):
        raise RelayError(ErrorCode.CONFLICT, "chat is already closed", status=domain.CLOSED)
    status = {"conversationId": cmd.conversationId, "status": domain.CLOSED, "changedAt": iso(now), "by": user}
    await announce(deps, env, "conv", cmd.conversationId, m.CONVERSATION_STATUS_CHANGED, status)
    closed = await deps.conversations.get(env.tenant, cmd.conversationId)
    return domain.public_conversation(closed or conversation, viewer=user, viewer_is_agent=True)


async def send_message(env: Envelope, deps: Deps) -> dict[str, Any]:
    """Checks that need no conversation, then the conversation's group commit (relay_message.ingest)."""
    cmd = m.SendMessage.model_validate(env.data)
    user, roles = _actor(env)
    check_text_length(deps, cmd.content)
    if not cmd.content.strip() and cmd.attachment is None:
        raise RelayError(ErrorCode.VALIDATION_ERROR, "content or attachment is required", field="content")
    if cmd.isInternal and not domain.is_agent(roles):
        raise RelayError(ErrorCode.PERMISSION_DENIED, "only agents write internal notes", field="isInternal")
    attachment = None
    if cmd.replyTo or cmd.threadId or cmd.parentMessageId or cmd.attachment is not None:
        # references name messages and files of the conversation: only a reader may learn whether they exist
        await _readable(deps, env, cmd.conversationId)
        if cmd.replyTo:
            await visible_message(deps, env, cmd.conversationId, cmd.replyTo, field="replyTo")
        await _check_references(deps, env, cmd)
        attachment = await _attachment(deps, env, cmd) if cmd.attachment is not None else None
    return await deps.sends.submit(deps, env, cmd, user, roles, attachment)


async def _attachment(deps: Deps, env: Envelope, cmd: m.SendMessage) -> dict[str, Any]:
    """The attachment as stored: one of this chat's uploads (size and type from the upload) or an http(s) link."""
    assert cmd.attachment is not None
    attachment = cmd.attachment.model_dump()
    file_id = domain.uploaded_file_id(attachment["url"])
    if file_id is None:
        if not domain.is_web_link(attachment["url"]):
            raise RelayError(
                ErrorCode.VALIDATION_ERROR, "attachment.url must be an upload or http(s) URL", field="attachment.url"
            )
        return attachment
    stored = await deps.files.get(env.tenant, file_id) if deps.files is not None else None
    if deps.files is None or stored is None or stored.get("conversationId") != cmd.conversationId:
        raise RelayError(ErrorCode.VALIDATION_ERROR, "attachment is not an upload of this chat", field="attachment.url")
    if cmd.isInternal:
        await deps.files.mark_internal(env.tenant, file_id)
    return {**attachment, "url": domain.file_url(file_id), "fileSize": stored["length"], "mimeType": stored["mimeType"]}


async def _check_references(deps: Deps, env: Envelope, cmd: m.SendMessage) -> None:
    """A thread reply names a root in this conversation; a parent message must exist in it too."""
    for field, ref in (("threadId", cmd.threadId), ("parentMessageId", cmd.parentMessageId)):
        if ref is None:
            continue
        target = await deps.messages.get(env.tenant, cmd.conversationId, ref)
        if target is None or target.get("deleted") or target.get("isInternal"):
            raise RelayError(ErrorCode.NOT_FOUND, f"message {ref} not found in this conversation", field=field)
        if field == "threadId" and target.get("threadId"):
            raise RelayError(ErrorCode.VALIDATION_ERROR, "a thread reply cannot start a thread", field=field)


def parse_instant(value: str, field: str) -> datetime:
    """An ISO 8601 instant from a client (naive means UTC)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RelayError(ErrorCode.VALIDATION_ERROR, f"{field} must be ISO 8601", field=field) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def get_history(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = m.GetHistory.model_validate(env.data)
    _, roles = _actor(env)
    await _readable(deps, env, cmd.conversationId)
    date_from = parse_instant(cmd.dateFrom, "dateFrom") if cmd.dateFrom else None
    docs, has_more = await deps.messages.history(
        env.tenant,
        cmd.conversationId,
        limit=cmd.limit,
        after_seq=cmd.afterSeq,
        before_seq=cmd.before,
        date_from=date_from,
        include_internal=domain.is_agent(roles),
    )
    return {"messages": [domain.public_message(d) for d in docs], "hasMore": has_more}


HANDLERS: dict[str, Handler] = {
    m.CREATE_CONVERSATION: create_conversation,
    m.CHECK_ACCESS: check_access,
    m.SEND_MESSAGE: send_message,
    m.GET_HISTORY: get_history,
    m.LIST_CONVERSATIONS: list_conversations,
    m.CLOSE_CONVERSATION: close_conversation,
}

__all__ = ["HANDLERS", "Deps", "ValidationError"]
