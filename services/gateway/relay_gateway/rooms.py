"""Socket.IO room names are the wire name scoped by tenant, so tenants never share a room."""

from __future__ import annotations

import re

SEP = "|"


def scoped(tenant: str, wire_room: str) -> str:
    return f"{tenant}{SEP}{wire_room}"


def wire(room: str) -> str:
    return room.split(SEP, 1)[1] if SEP in room else room


def support_room(conversation_id: str) -> str:
    return f"chat:{conversation_id}"


def support_agents_room(conversation_id: str) -> str:
    return f"chat:{conversation_id}:commercial"


# seed-001 agents join the notes room by passing `chat:{id}:commercial` as the chatId
AGENTS_ROOM = re.compile(r"^chat:(?P<id>.+):commercial$")
PLAIN_ROOM = re.compile(r"^chat:(?P<id>.+)$")


def parse_chat_ref(raw: str) -> tuple[str, bool]:
    """(conversation id, wants the agents' notes room)."""
    if match := AGENTS_ROOM.match(raw):
        return match["id"], True
    if match := PLAIN_ROOM.match(raw):
        return match["id"], False
    return raw, False


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def tenant_room() -> str:
    return "tenant:all"


def channel_room(conversation_id: str) -> str:
    return f"channel:{conversation_id}"


def thread_room(thread_id: str) -> str:
    return f"thread:{thread_id}"


def role_room(role: str) -> str:
    return f"role:{role.lower()}"


def free_room(name: str) -> str:
    """seed-002 `join-room` rooms live apart from every reserved room (free names have no ':')."""
    return f"room:{name}"


def presence_room(dialect: str) -> str:
    """The sockets that see every presence transition of their tenant, in `dialect` (presence_audience.py)."""
    return f"presence:{dialect}"


def presence_of_room(dialect: str, user_id: str) -> str:
    """The sockets that see only some people's presence (visitors, narrowed roles) and may see `user_id`'s."""
    return f"presence:{dialect}:of:{user_id}"


EVERYONE = "everyone"  # with tenant "*": every authenticated socket of every tenant (relay.emit scope all)


def mensajeria_room(conversation_id: str) -> str:
    # under the reserved `chat:` prefix, so the free-room API can never join it
    return f"chat:{conversation_id}:mensajeria"


def conversation_rooms(conversation_id: str) -> tuple[str, ...]:
    """Every room on `/` fed by one conversation's events: one socket may be in several (two dialects)."""
    return (support_room(conversation_id), support_agents_room(conversation_id), mensajeria_room(conversation_id))
