"""Channels (seed-000): a channel is a conversation of type `channel` with members and a visibility."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from relay_contracts import Envelope, ErrorCode, RelayError
from relay_contracts import messages as m

from relay_message import domain
from relay_message.handlers import Deps, Handler, _actor, announce, open_conversation


async def _channel(deps: Deps, env: Envelope, conversation_id: str) -> dict[str, Any]:
    conversation = await deps.conversations.get(env.tenant, conversation_id)
    if conversation is None:
        raise RelayError(ErrorCode.NOT_FOUND, f"channel {conversation_id} not found", field="channelId")
    return conversation


async def create_channel(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = m.CreateChannel.model_validate(env.data)
    user, _ = _actor(env)
    now = datetime.now(UTC)
    # the creator moderates the channel; a later entry never demotes an earlier one
    members: dict[str, dict[str, Any]] = {user: domain.member(user, "moderator", now)}
    for moderator in cmd.moderators:
        members.setdefault(moderator, domain.member(moderator, "moderator", now))
    for member in cmd.members:
        members.setdefault(member, domain.member(member, "member", now))
    doc = domain.new_conversation(
        tenant=env.tenant,
        conversation_id=cmd.conversationId,
        type_="channel",
        subject=cmd.name,
        status=domain.IN_PROGRESS,
        visibility=cmd.visibility,
        participants=list(members.values()),
        created_by=user,
        at=now,
    )
    doc["name"] = cmd.name
    conflict = RelayError(ErrorCode.CONFLICT, f"channel {cmd.conversationId} already exists", field="channelId")
    return await open_conversation(deps, env, doc, conflict)


async def list_channels(env: Envelope, deps: Deps) -> dict[str, Any]:
    cmd = m.ListChannels.model_validate(env.data)
    user, _ = _actor(env)
    docs = await deps.conversations.list_channels(env.tenant, user, include_public=cmd.includePublic)
    return {"channels": [domain.public_conversation(d, viewer=user) for d in docs]}


async def join_channel(env: Envelope, deps: Deps) -> dict[str, Any]:
    """Members join; anyone of the tenant joins a public channel (and becomes a member); others are refused."""
    cmd = m.JoinChannel.model_validate(env.data)
    user, roles = _actor(env)
    conversation = await _channel(deps, env, cmd.conversationId)
    if domain.participant(conversation, user) is None:
        if conversation.get("type") == "channel" and conversation.get("visibility") == "public":
            now = datetime.now(UTC)
            updated = await deps.conversations.add_participant(
                env.tenant, cmd.conversationId, domain.member(user, "member", now)
            )
            conversation = updated or await _channel(deps, env, cmd.conversationId)
            if updated is not None:
                await _announce_members(deps, env, cmd.conversationId, [user])
        elif not domain.can_read(conversation, user, roles):
            raise RelayError(ErrorCode.PERMISSION_DENIED, "this channel is for its members only", field="channelId")
    return domain.public_conversation(conversation, viewer=user)


async def add_members(env: Envelope, deps: Deps) -> dict[str, Any]:
    """Moderators of the channel add members (any member may add to a public channel)."""
    cmd = m.AddMembers.model_validate(env.data)
    user, roles = _actor(env)
    conversation = await _channel(deps, env, cmd.conversationId)
    if not domain.can_read(conversation, user, roles):
        raise RelayError(ErrorCode.NOT_FOUND, f"channel {cmd.conversationId} not found", field="channelId")
    public_member = conversation.get("visibility") == "public" and domain.participant(conversation, user) is not None
    if not (public_member or domain.can_moderate(conversation, user, roles)):
        raise RelayError(ErrorCode.PERMISSION_DENIED, "only moderators add members to this channel")
    now = datetime.now(UTC)
    added = await deps.conversations.add_participants(
        env.tenant, cmd.conversationId, [domain.member(u, "member", now) for u in dict.fromkeys(cmd.members)]
    )
    if added:
        await _announce_members(deps, env, cmd.conversationId, added)
    conversation = await _channel(deps, env, cmd.conversationId)
    return {**domain.public_conversation(conversation, viewer=user), "added": added}


async def _announce_members(deps: Deps, env: Envelope, conversation_id: str, added: list[str]) -> None:
    data = {"conversationId": conversation_id, "userIds": added, "addedBy": env.actor.userId if env.actor else None}
    await announce(deps, env, "conv", conversation_id, m.MEMBERS_ADDED, data)
    for user in added:  # so each new member's open sockets, wherever they are, can enter the channel's room
        await announce(deps, env, "user", user, m.MEMBERS_ADDED, data)


HANDLERS: dict[str, Handler] = {
    m.CREATE_CHANNEL: create_channel,
    m.LIST_CHANNELS: list_channels,
    m.JOIN_CHANNEL: join_channel,
    m.ADD_MEMBERS: add_members,
}
