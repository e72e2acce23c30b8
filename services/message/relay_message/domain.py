"""Pure rules of conversations and messages: access, permissions, first response, public shape."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from relay_auth.principal import AGENT_ROLES
from relay_contracts.envelope import iso
from relay_contracts.messages import ParticipantSpec

SUPPORT = "support"
PENDING, IN_PROGRESS, CLOSED = "PENDING", "IN_PROGRESS", "CLOSED"
PREVIEW_CHARS = 120


def user_field(user_id: str) -> str:
    """A user id as a document field name (dots and dollars would be paths/operators)."""
    return user_id.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


FILE_URL = re.compile(r"^(?:https?://[^/\s]+)?/v2/files/(?P<id>[A-Za-z0-9_-]{8,64})$")


def file_url(file_id: str) -> str:
    return f"/v2/files/{file_id}"


def uploaded_file_id(url: str) -> str | None:
    """The upload an attachment URL points at (`/v2/files/{id}`, relative or absolute), if any."""
    match = FILE_URL.match(url)
    return match["id"] if match else None


def is_web_link(url: str) -> bool:
    return re.match(r"^https?://[^\s/]+", url) is not None


MODERATOR_ROLES = frozenset({"moderador", "moderator", "admin"})


def is_agent(roles: tuple[str, ...] | list[str]) -> bool:
    return any(r.lower() in AGENT_ROLES for r in roles)


def participant(conversation: dict[str, Any], user_id: str) -> dict[str, Any] | None:
    for p in conversation.get("participants", []):
        if p.get("userId") == user_id:
            return dict(p)
    return None


def default_permissions(role: str) -> dict[str, bool]:
    """What a participant of `role` may do unless the conversation's creator says otherwise."""
    moderator = role.lower() in MODERATOR_ROLES
    return {"canSend": True, "canDelete": moderator, "canModerate": moderator}


def new_conversation(
    *,
    tenant: str,
    conversation_id: str,
    type_: str,
    status: str,
    participants: list[dict[str, Any]],
    created_by: str,
    at: datetime,
    subject: str | None = None,
    visibility: str = "members",
) -> dict[str, Any]:
    """A conversation as first stored, whatever dialect opened it: no messages, nothing unread."""
    return {
        "tenant": tenant,
        "conversationId": conversation_id,
        "type": type_,
        "subject": subject,
        "status": status,
        "visibility": visibility,
        "participants": participants,
        "lastSeq": 0,
        "stats": {"totalMessages": 0, "lastMessageAt": None, "unread": {}},
        "createdAt": at,
        "lastActivityAt": at,
        "createdBy": created_by,
    }


def creator_role(roles: tuple[str, ...]) -> str:
    """The role a conversation's creator (or an agent who joins by answering) takes: an agent role when it has one."""
    agent_roles = [r for r in roles if is_agent([r])]
    return (agent_roles or list(roles) or ["member"])[0]


def member(user_id: str, role: str, at: datetime) -> dict[str, Any]:
    """A participant entry with its role's default permissions."""
    return {"userId": user_id, "role": role, "joinedAt": at, "permissions": default_permissions(role)}


def build_participants(
    creator: str, creator_role: str, specs: Iterable[ParticipantSpec], at: datetime
) -> list[dict[str, Any]]:
    """The creator first, then each listed user once (a later entry for the same user wins)."""
    members: dict[str, dict[str, Any]] = {creator: member(creator, creator_role, at)}
    for spec in specs:
        role = spec.role.lower()
        permissions = default_permissions(role)
        if spec.permissions is not None:
            permissions.update(spec.permissions.model_dump(exclude_none=True))
        members[spec.userId] = {"userId": spec.userId, "role": role, "joinedAt": at, "permissions": permissions}
    return list(members.values())


def agents_may_read(conversation: dict[str, Any]) -> bool:
    """Agents of the tenant may join any support chat of the tenant (a conversation's type never changes)."""
    return conversation.get("type") == SUPPORT


def can_read(conversation: dict[str, Any], user_id: str, roles: tuple[str, ...]) -> bool:
    if participant(conversation, user_id) is not None:
        return True
    if agents_may_read(conversation) and is_agent(roles):
        return True
    return conversation.get("visibility") == "public"


def can_send(conversation: dict[str, Any], user_id: str, roles: tuple[str, ...]) -> bool:
    if conversation.get("status") == CLOSED:
        return False
    member = participant(conversation, user_id)
    if member is not None:
        return bool(member.get("permissions", {}).get("canSend", True))
    return conversation.get("type") == SUPPORT and is_agent(roles)


def claims_first_response(conversation: dict[str, Any], roles: tuple[str, ...], is_internal: bool) -> bool:
    """The first agent message (not an internal note) in a PENDING support chat."""
    return (
        conversation.get("type") == SUPPORT
        and conversation.get("status") == PENDING
        and is_agent(roles)
        and not is_internal
    )


def public_message(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored message as every dialect's renderer receives it."""
    created = doc["createdAt"]
    out: dict[str, Any] = {
        "messageId": doc["_id"],
        "conversationId": doc["conversationId"],
        "seq": doc["seq"],
        "senderId": doc["senderId"],
        "senderRoles": list(doc.get("senderRoles", [])),
        "type": doc.get("type", "text"),
        "content": doc.get("content", ""),
        "isInternal": bool(doc.get("isInternal", False)),
        "isFirstResponse": bool(doc.get("isFirstResponse", False)),
        "clientMessageId": doc.get("clientMessageId"),
        "replyTo": doc.get("replyTo"),
        "createdAt": iso(created) if isinstance(created, datetime) else created,
        "priority": doc.get("priority", "normal"),
        "deliveryState": doc.get("deliveryState", "sent"),
        "reads": [{"userId": r["userId"], "at": _iso_or_none(r.get("at"))} for r in doc.get("reads", [])],
    }
    if doc.get("metadata"):
        out["metadata"] = dict(doc["metadata"])
    if doc.get("attachment"):
        out["attachment"] = dict(doc["attachment"])
    out.update(channel_fields(doc))
    return out


def preview(message: dict[str, Any]) -> dict[str, Any]:
    """What a chat list shows of a message (never stored for an audience that may not see it)."""
    return {
        "messageId": message["messageId"],
        "seq": message["seq"],
        "senderId": message["senderId"],
        "type": message["type"],
        "content": message["content"][:PREVIEW_CHARS],
        "isInternal": message["isInternal"],
        "sentAt": message["createdAt"],
    }


def unread_audience(conversation: dict[str, Any], sender: str, is_internal: bool) -> list[str]:
    """Members whose unread count a new message raises: not the sender; only agents for a note."""
    return [
        p["userId"]
        for p in conversation.get("participants", [])
        if p.get("userId") != sender and (not is_internal or is_agent([str(p.get("role", ""))]))
    ]


def can_close(conversation: dict[str, Any], roles: tuple[str, ...]) -> bool:
    return conversation.get("type") == SUPPORT and is_agent(roles)


def public_conversation(
    doc: dict[str, Any], *, viewer: str | None = None, viewer_is_agent: bool = False
) -> dict[str, Any]:
    stats = doc.get("stats", {})
    out = {
        "conversationId": doc["conversationId"],
        "type": doc.get("type"),
        "subject": doc.get("subject"),
        "status": doc.get("status"),
        "visibility": doc.get("visibility", "members"),
        "participants": [
            {**p, "joinedAt": iso(p["joinedAt"]) if isinstance(p.get("joinedAt"), datetime) else p.get("joinedAt")}
            for p in doc.get("participants", [])
        ],
        "lastSeq": doc.get("lastSeq", 0),
        "totalMessages": stats.get("totalMessages", 0),
        "lastMessageAt": _iso_or_none(stats.get("lastMessageAt")),
        "createdAt": _iso_or_none(doc.get("createdAt")),
        "createdBy": doc.get("createdBy"),
        "lastActivityAt": _iso_or_none(doc.get("lastActivityAt")),
    }
    if doc.get("name"):
        out["name"] = doc["name"]
    if doc.get("description"):
        out["description"] = doc["description"]
    if viewer is not None:
        out["unreadCount"] = int(stats.get("unread", {}).get(user_field(viewer), 0))
        # the agents' preview may be an internal note; everyone else sees the last public message
        out["lastMessage"] = (doc.get("preview") or {}).get("agents" if viewer_is_agent else "all")
    if doc.get("closedAt") is not None:
        out["closedAt"] = _iso_or_none(doc.get("closedAt"))
        out["closedBy"] = doc.get("closedBy")
    return out


def _iso_or_none(value: Any) -> str | None:
    return iso(value) if isinstance(value, datetime) else value


# --- channels (seed-000): moderation, threads, edits, reactions ------------------------------------------------------


def can_moderate(conversation: dict[str, Any], user_id: str, roles: tuple[str, ...]) -> bool:
    """A moderator of the tenant (role) or of this conversation (participant role or permission)."""
    if any(r.lower() in MODERATOR_ROLES for r in roles):
        return True
    member = participant(conversation, user_id)
    if member is None:
        return False
    permissions = member.get("permissions") or {}
    return (
        str(member.get("role", "")).lower() in MODERATOR_ROLES
        or bool(permissions.get("canModerate"))
        or bool(permissions.get("canDelete"))
    )


def can_delete(conversation: dict[str, Any], message: dict[str, Any], user_id: str, roles: tuple[str, ...]) -> bool:
    return message.get("senderId") == user_id or can_moderate(conversation, user_id, roles)


def reaction_summary(reactions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """[{emoji, count, users}] in first-use order."""
    by_emoji: dict[str, list[str]] = {}
    for r in reactions:
        by_emoji.setdefault(r["emoji"], []).append(r["userId"])
    return [{"emoji": e, "count": len(users), "users": users} for e, users in by_emoji.items()]


def channel_fields(doc: dict[str, Any]) -> dict[str, Any]:
    edits = doc.get("edits") or []
    out: dict[str, Any] = {
        "senderName": doc.get("senderName"),
        "threadId": doc.get("threadId"),
        "parentMessageId": doc.get("parentMessageId"),
        "attachments": list(doc.get("attachments") or []),
        "mentions": list(doc.get("mentions") or []),
        "links": list(doc.get("links") or []),
        "reactions": reaction_summary(doc.get("reactions") or []),
        "edited": bool(edits),
        "editedAt": _iso_or_none(edits[-1]["editedAt"]) if edits else None,
        "editHistory": [
            {
                "content": e.get("content", ""),
                "editedAt": _iso_or_none(e.get("editedAt")),
                "editedBy": e.get("editedBy"),
            }
            for e in edits
        ],
    }
    if doc.get("thread"):
        thread = doc["thread"]
        out["thread"] = {
            "threadId": doc["_id"],
            "name": thread.get("name"),
            "createdBy": thread.get("createdBy"),
            "createdAt": _iso_or_none(thread.get("createdAt")),
        }
    return out
