"""Commands and events of presence and users (SPEC §4, §6).

Gateways report sockets (`presence.connect` / `presence.disconnect`), their own liveness
(`presence.heartbeat`) and user activity; the presence service owns the state and announces each
user transition once (`presence.changed`). Queries are request/reply commands.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# commands (routing keys on relay.commands)
CONNECT = "presence.connect"
DISCONNECT = "presence.disconnect"
HEARTBEAT = "presence.heartbeat"
SYNC = "presence.sync"
ACTIVITY = "presence.activity"
SET_STATUS = "presence.set_status"
TRACK_CONVERSATION = "presence.track_conversation"
ACTIVE_USERS = "presence.active_users"
STATS = "presence.stats"
LOOKUP = "presence.lookup"
STATISTICS = "presence.statistics"

# events (relay.events, key `<tenant>.tenant._.presence.changed`)
CHANGED = "presence.changed"

# the relay.emit envelope type (internal services → every gateway → local sockets)
EMIT = "relay.emit"

Status = Literal["online", "away", "offline"]
EmitScope = Literal["user", "room", "role", "tenant", "all"]
Sid = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ReplicaKey = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# tenant of an envelope that targets every socket of every tenant
EVERYONE_TENANT = "*"


def liveness_key(instance: str) -> str:
    """Redis hash incarnation → last heartbeat (epoch s). Gateways also write it directly, so a backlog
    in the presence queue never makes a live replica look dead."""
    return f"{instance}:presence:replicas"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Connect(Strict):
    sid: Sid
    replica: ReplicaKey  # `<replica id>/<boot id>`: a restarted replica is a new incarnation
    namespace: str = "/"
    user: dict[str, Any] = Field(default_factory=dict)  # Principal.public()


class Disconnect(Strict):
    sid: Sid
    replica: ReplicaKey


class Heartbeat(Strict):
    replica: ReplicaKey
    replicaId: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    sockets: int = Field(default=0, ge=0)


class SyncedSocket(Strict):
    sid: Sid
    tenant: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    userId: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    namespace: str = "/"
    user: dict[str, Any] = Field(default_factory=dict)


class Sync(Strict):
    """A replica's full list of authenticated sockets, sent when the service's count disagrees."""

    replica: ReplicaKey
    sockets: list[SyncedSocket]


class Activity(Strict):
    pass


class SetStatus(Strict):
    status: Literal["online", "away"]


class TrackConversation(Strict):
    sid: Sid
    conversationId: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    joined: bool


class Lookup(Strict):
    userIds: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(max_length=500)


class Emit(Strict):
    """What a `relay.emit` envelope carries: emit `event` with `payload` to the scope's sockets."""

    scope: EmitScope
    target: str = "_"  # user id, wire room name, role; ignored for tenant/all
    event: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    payload: Any = None
    namespace: str = "/"
