"""Pure rules of conversations and messages: access, permissions, first response, public shape."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from relay_auth.principal import AGENT_ROLES
from relay_contracts.envelope import iso
from relay_contracts.messages import ParticipantSpec

SUPPORT = "support"
PENDING, IN_PROGRESS, CLOSED = "PENDING", "IN_PROGRESS", "CLOSED"
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


def build_participants(
    creator: str, creator_role: str, specs: Iterable[ParticipantSpec], at: datetime
) -> list[dict[str, Any]]:
    """The creator first, then each listed user once (a later entry for the same user wins)."""
    members: dict[str, dict[str, Any]] = {
        creator: {
            "userId": creator,
            "role": creator_role,
            "joinedAt": at,
            "permissions": default_permissions(creator_role),
        }
    }
    for spec in specs:
        role = spec.role.lower()
        permissions = default_permissions(role)
        if spec.permissions is not None:
            permissions.update(spec.permissions.model_dump(exclude_none=True))
        members[spec.userId] = {"userId": spec.userId, "role": role, "joinedAt": at, "permissions": permissions}
    return list(members.values())


def can_read(conversation: dict[str, Any], user_id: str, roles: tuple[str, ...]) -> bool:
    if participant(conversation, user_id) is not None:
        return True
    if conversation.get("type") == SUPPORT and is_agent(roles):
        return True  # agents of the tenant may join any support chat of the tenant
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
    return out


def public_conversation(doc: dict[str, Any], *, viewer: str | None = None) -> dict[str, Any]:
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
    if doc.get("description"):
        out["description"] = doc["description"]
    if viewer is not None:
        out["unreadCount"] = int(stats.get("unread", {}).get(viewer, 0))
    return out


def _iso_or_none(value: Any) -> str | None:
    return iso(value) if isinstance(value, datetime) else value
