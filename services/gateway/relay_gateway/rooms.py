"""Socket.IO room names are the wire name scoped by tenant, so tenants never share a room."""

from __future__ import annotations

SEP = "|"


def scoped(tenant: str, wire_room: str) -> str:
    return f"{tenant}{SEP}{wire_room}"


def wire(room: str) -> str:
    return room.split(SEP, 1)[1] if SEP in room else room


def support_room(conversation_id: str) -> str:
    return f"chat:{conversation_id}"


def support_agents_room(conversation_id: str) -> str:
    return f"chat:{conversation_id}:commercial"


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def tenant_room() -> str:
    return "tenant:all"


def role_room(role: str) -> str:
    return f"role:{role.lower()}"


def free_room(name: str) -> str:
    """seed-002 `join-room` rooms live apart from every reserved room (free names have no ':')."""
    return f"room:{name}"


EVERYONE = "everyone"  # with tenant "*": every authenticated socket of every tenant (relay.emit scope all)
