"""One async function per command. No broker, HTTP or socket objects in here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError
from relay_contracts import Envelope, ErrorCode, RelayError, new_id
from relay_contracts import messages as m
from relay_contracts.envelope import iso
from relay_contracts.routing import event_key

from relay_message import domain
from relay_message.adapters.files import FileRepo
from relay_message.adapters.repo import ConversationRepo, MessageRepo, SeqConflict

Publish = Callable[[str, Envelope], Awaitable[None]]
Handler = Callable[[Envelope, "Deps"], Awaitable[Any]]

MAX_SEQ_RETRIES = 20


@dataclass
class Deps:
    conversations: ConversationRepo
    messages: MessageRepo
    publish: Publish  # (routing key, event) on relay.events, confirmed
    max_text_length: int = 4000
    files: FileRepo | None = None


def _actor(env: Envelope) -> tuple[str, tuple[str, ...]]:
    if env.actor is None:
        raise RelayError(ErrorCode.AUTH_REQUIRED, "command has no actor")
    return env.actor.userId, tuple(r.lower() for r in env.actor.roles)


async def announce(deps: Deps, env: Envelope, scope: str, target: str, event_type: str, data: dict[str, Any]) -> None:
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
        participants=domain.build_participants(user, _creator_role(roles), cmd.participants, now),
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


def _creator_role(roles: tuple[str, ...]) -> str:
    """The role a conversation's creator takes: an agent role when it has one."""
    agent_roles = [r for r in roles if domain.is_agent([r])]
    return (agent_roles or list(roles) or ["member"])[0]


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
    cmd = m.SendMessage.model_validate(env.data)
    user, roles = _actor(env)
    check_text_length(deps, cmd.content)
    if not cmd.content.strip() and cmd.attachment is None:
        raise RelayError(ErrorCode.VALIDATION_ERROR, "content or attachment is required", field="content")
    if cmd.isInternal and not domain.is_agent(roles):
        raise RelayError(ErrorCode.PERMISSION_DENIED, "only agents write internal notes", field="isInternal")
    conversation = await _readable(deps, env, cmd.conversationId)
    if cmd.replyTo and not await deps.messages.exists(env.tenant, cmd.conversationId, cmd.replyTo):
        raise RelayError(ErrorCode.NOT_FOUND, f"message {cmd.replyTo} not found in this conversation", field="replyTo")
    await _check_references(deps, env, cmd)
    attachment = await _attachment(deps, env, cmd) if cmd.attachment is not None else None

    # the conversation's lock is held until the event is out: events of one conversation leave in seq
    # order (its commands reach one instance at a time, through its command lane; see relay_broker.lanes)
    async with deps.messages.lock(env.tenant, cmd.conversationId):
        existing = await deps.messages.find_by_client_id(env.tenant, cmd.conversationId, user, cmd.clientMessageId)
        if existing is not None:
            # a retry: answer the original; re-announce it in case the first attempt died before publishing
            # (same event id, so gateways drop the copy they already delivered)
            public = domain.public_message(existing)
            await _announce(deps, env, public)
            await _announce_mentions(deps, env, public, conversation)
            return public
        if not domain.can_send(conversation, user, roles):
            raise RelayError(ErrorCode.PERMISSION_DENIED, "you may not send to this conversation")
        first = domain.claims_first_response(
            conversation, roles, cmd.isInternal
        ) and await deps.conversations.claim_status(env.tenant, cmd.conversationId, domain.PENDING, domain.IN_PROGRESS)
        doc = await _insert_with_next_seq(deps, env, cmd, user, roles, first, attachment)

        public = domain.public_message(doc)
        if domain.participant(conversation, user) is None and domain.is_agent(roles):
            # an agent who answers becomes a member: their own unread counts and chat list follow
            member = domain.member(user, _creator_role(roles), doc["createdAt"])
            await deps.conversations.add_participant(env.tenant, cmd.conversationId, member)
        await deps.conversations.record_message(
            env.tenant,
            cmd.conversationId,
            doc["seq"],
            doc["createdAt"],
            user,
            domain.unread_audience(conversation, user, cmd.isInternal),
            preview=domain.preview(public),
            internal=cmd.isInternal,
        )
        await _announce(deps, env, public)
    await _announce_mentions(deps, env, public, conversation)
    if first:
        status = {"conversationId": cmd.conversationId, "status": domain.IN_PROGRESS, "changedAt": public["createdAt"]}
        await announce(deps, env, "conv", cmd.conversationId, m.CONVERSATION_STATUS_CHANGED, status)
    return public


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


async def _insert_with_next_seq(
    deps: Deps,
    env: Envelope,
    cmd: m.SendMessage,
    user: str,
    roles: tuple[str, ...],
    first: bool,
    attachment: dict[str, Any] | None = None,
) -> dict[str, Any]:
    for _ in range(MAX_SEQ_RETRIES):
        seq = await deps.messages.last_seq(env.tenant, cmd.conversationId) + 1
        doc: dict[str, Any] = {
            "_id": new_id(),
            "tenant": env.tenant,
            "conversationId": cmd.conversationId,
            "seq": seq,
            "senderId": user,
            "senderRoles": list(roles),
            "type": cmd.type,
            "content": cmd.content,
            "attachment": attachment,
            "isInternal": cmd.isInternal,
            "isFirstResponse": first,
            "replyTo": cmd.replyTo,
            "senderName": env.actor.username if env.actor else None,
            "threadId": cmd.threadId,
            "parentMessageId": cmd.parentMessageId,
            "attachments": list(cmd.attachments),
            "mentions": list(dict.fromkeys(cmd.mentions)),
            "links": list(cmd.links),
            "thread": None,
            "priority": cmd.priority,
            "metadata": cmd.metadata,
            "clientMessageId": cmd.clientMessageId,
            "deliveryState": "sent",
            "reads": [],
            "reactions": [],
            "edits": [],
            "deleted": False,
            "createdAt": datetime.now(UTC),
            "correlationId": env.correlationId,
        }
        try:
            await deps.messages.insert(doc)
            return doc
        except SeqConflict:
            continue  # another instance took this seq; the next read sees it
        except DuplicateKeyError:
            original = await deps.messages.find_by_client_id(env.tenant, cmd.conversationId, user, cmd.clientMessageId)
            if original is not None:
                return original
            raise
    raise RelayError(ErrorCode.UNAVAILABLE, "conversation too busy, retry")


async def _announce(deps: Deps, env: Envelope, public: dict[str, Any]) -> None:
    event = env.caused(m.MESSAGE_CREATED, public, id=f"msg-{public['messageId']}")
    await deps.publish(event_key(env.tenant, "conv", public["conversationId"], m.MESSAGE_CREATED), event)


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


async def _announce_mentions(deps: Deps, env: Envelope, public: dict[str, Any], conversation: dict[str, Any]) -> None:
    """One event per mentioned user who may read the conversation, routed to that user wherever they are."""
    if public.get("isInternal"):
        return  # a note's mentions would reach readers who may not see notes
    for user in public.get("mentions", []):
        if user == public["senderId"] or not domain.can_read(conversation, user, ()):
            continue
        event = env.caused(
            m.MESSAGE_MENTIONED, {**public, "mentionedUserId": user}, id=f"mention-{public['messageId']}-{user}"
        )
        await deps.publish(event_key(env.tenant, "user", user, m.MESSAGE_MENTIONED), event)


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
