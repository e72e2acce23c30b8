"""Pure presence rules: one user's sockets and status, and the transitions worth announcing.

A user is `online` while any socket is connected (on any replica), `away` when they say so or are
idle, `offline` otherwise. Losing the last socket does not announce `offline` at once: the user gets
a grace period to come back (a reload, a replica restart) so nobody flaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ONLINE, AWAY, OFFLINE = "online", "away", "offline"


@dataclass
class Socket:
    sid: str
    replica: str
    namespace: str
    connected_at: float
    conversations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Change:
    previous: str
    status: str


@dataclass
class UserPresence:
    tenant: str
    user_id: str
    user: dict[str, Any] = field(default_factory=dict)
    sockets: dict[str, Socket] = field(default_factory=dict)
    status: str = OFFLINE
    manual_away: bool = False
    connected_since: float | None = None
    last_seen: float | None = None
    last_activity: float = 0.0
    offline_at: float | None = None  # when a user with no sockets left is announced offline

    @property
    def announced(self) -> bool:
        """Counted as an active user (online or away, including during the reconnect grace)."""
        return self.status != OFFLINE

    def connect(self, socket: Socket, user: dict[str, Any], now: float) -> Change | None:
        self.sockets[socket.sid] = socket
        if user:
            self.user = dict(user)
        self.offline_at = None
        self.last_seen = now
        if self.status != OFFLINE:
            return None  # another tab, or back within the grace period: no announcement
        self.status = ONLINE
        self.manual_away = False
        self.connected_since = now
        self.last_activity = now
        return Change(OFFLINE, ONLINE)

    def disconnect(self, sid: str, now: float, grace: float) -> Socket | None:
        socket = self.sockets.pop(sid, None)
        if socket is None:
            return None
        self.last_seen = now
        if not self.sockets and self.status != OFFLINE:
            self.offline_at = now + grace
        return socket

    def settle(self, now: float) -> Change | None:
        """Announce offline once the grace period of a user without sockets has passed."""
        if self.sockets or self.offline_at is None or self.offline_at > now:
            return None
        self.offline_at = None
        previous, self.status = self.status, OFFLINE
        self.manual_away = False
        self.connected_since = None
        return Change(previous, OFFLINE) if previous != OFFLINE else None

    def set_status(self, status: str, now: float) -> Change | None:
        if status not in (ONLINE, AWAY):
            raise ValueError(f"unknown status {status}")
        if self.status == OFFLINE:
            return None  # only a connected user says they are away or back
        self.manual_away = status == AWAY
        self.last_activity = now
        return self._move(status)

    def activity(self, now: float) -> Change | None:
        """The user did something: ends an automatic (idle) away, never a chosen one."""
        self.last_activity = now
        if self.status == AWAY and not self.manual_away and self.sockets:
            return self._move(ONLINE)
        return None

    def idle(self, now: float, idle_seconds: float) -> Change | None:
        if self.status == ONLINE and now - self.last_activity >= idle_seconds:
            return self._move(AWAY)
        return None

    def _move(self, status: str) -> Change | None:
        if status == self.status:
            return None
        previous, self.status = self.status, status
        return Change(previous, status)

    def add_conversation(self, sid: str, conversation_id: str, joined: bool) -> bool:
        socket = self.sockets.get(sid)
        if socket is None:
            return False
        if joined and conversation_id not in socket.conversations:
            socket.conversations.append(conversation_id)
            return True
        if not joined and conversation_id in socket.conversations:
            socket.conversations.remove(conversation_id)
            return True
        return False

    def public(self, now: float) -> dict[str, Any]:
        """The user as `active-users` and the REST ops API show it."""
        return {
            **self.user,
            "userId": self.user_id,
            "status": self.status,
            "connectedAt": iso(self.connected_since),
            "lastSeen": iso(self.last_seen),
            "socketCount": len(self.sockets),
            "connectionSeconds": round(now - self.connected_since, 3) if self.connected_since else 0,
        }

    # storage shape (one JSON document per user)
    def to_doc(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "userId": self.user_id,
            "user": self.user,
            "sockets": {
                s.sid: [s.replica, s.namespace, s.connected_at, s.conversations] for s in self.sockets.values()
            },
            "status": self.status,
            "manualAway": self.manual_away,
            "connectedSince": self.connected_since,
            "lastSeen": self.last_seen,
            "lastActivity": self.last_activity,
            "offlineAt": self.offline_at,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> UserPresence:
        return cls(
            tenant=doc["tenant"],
            user_id=doc["userId"],
            user=doc.get("user") or {},
            sockets={
                sid: Socket(sid, rec[0], rec[1], float(rec[2]), list(rec[3]))
                for sid, rec in (doc.get("sockets") or {}).items()
            },
            status=doc.get("status", OFFLINE),
            manual_away=bool(doc.get("manualAway")),
            connected_since=doc.get("connectedSince"),
            last_seen=doc.get("lastSeen"),
            last_activity=float(doc.get("lastActivity") or 0.0),
            offline_at=doc.get("offlineAt"),
        )


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stats(users: list[UserPresence], now: float) -> dict[str, Any]:
    """seed-002 `users-stats`: totals, users per role, how long each has been connected."""
    by_role: dict[str, int] = {}
    for u in users:
        for role in u.user.get("roles") or ["none"]:
            by_role[role] = by_role.get(role, 0) + 1
    return {
        "totalUsers": len(users),
        "totalSockets": sum(len(u.sockets) for u in users),
        "usersByRole": by_role,
        "connectionTimes": [
            {
                "userId": u.user_id,
                "username": u.user.get("username"),
                "roles": u.user.get("roles") or [],  # lets the gateways apply who-sees-whom to the list
                "connectedAt": iso(u.connected_since),
                "durationSeconds": round(now - u.connected_since, 3) if u.connected_since else 0,
            }
            for u in users
        ],
    }
