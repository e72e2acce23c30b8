"""Who sees whose presence: the one rule (docs/presence.md, "Who sees whose presence").

- A user with a role in `PRESENCE_VISIBLE_ROLES` (default: every role but `visitor`) sees every
  presence transition of their tenant.
- Anyone else (a visitor, or a role the setting leaves out) sees only the people of their own
  conversations (the participants), and never a visitor.
- Each socket sees a transition once, in the dialect it speaks (speaks.py).

The rule becomes room membership, so a transition costs one delivery per entitled socket: on `/`, a
tenant-wide socket sits in `presence:<dialect>`, a restricted one in `presence:<dialect>:of:<user>` for
each person it may see (dialects/presence.py renders to both); on `/chat` restricted sockets sit in
`presence:restricted`, which `user_presence` about a visitor skips (sockets/channels.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from relay_auth import Principal
from relay_contracts import Envelope
from relay_contracts import messages as m
from relay_log import get_logger

from relay_gateway.context import Connection, Gateway
from relay_gateway.rooms import presence_of_room, presence_room, scoped, user_room
from relay_gateway.speaks import presence_dialect

log = get_logger(__name__)

VISITOR = "visitor"
RESTRICTED_ROOM = "presence:restricted"  # on /chat: the sockets that never see a visitor's presence


def sees_tenant(roles: Iterable[str], visible_roles: Iterable[str] = ()) -> bool:
    """Whether a user with `roles` sees the whole tenant's presence (`visible_roles` empty: all but visitor)."""
    mine = {r.lower() for r in roles}
    allowed = {r.lower() for r in visible_roles}
    if allowed:
        return bool(mine & allowed)
    return not mine or bool(mine - {VISITOR})


def shown_to_restricted(user: dict[str, Any]) -> bool:
    """Whether the people of a restricted viewer's conversations include this user: never a visitor."""
    return VISITOR not in {str(r).lower() for r in user.get("roles") or ()}


def people_of(conversations: Iterable[dict[str, Any]], viewer_id: str) -> set[str]:
    """The participants of the viewer's conversations, the viewer and those taking part as visitors aside."""
    return {
        p["userId"]
        for c in conversations
        for p in c.get("participants") or ()
        if p.get("userId") != viewer_id and str(p.get("role", "")).lower() != VISITOR
    }


def limit_to(people: set[str] | None, answer: dict[str, Any]) -> dict[str, Any]:
    """`active-users {users, count}` or `users-stats` for a restricted viewer who may see `people`
    (None: the whole tenant): the people it may see; the stats keep the tenant's totals."""
    if people is None:
        return answer
    if "connectionTimes" in answer:
        times = [t for t in answer["connectionTimes"] if t["userId"] in people and shown_to_restricted(t)]
        return {**answer, "connectionTimes": times}
    users = [u for u in answer["users"] if u["userId"] in people and shown_to_restricted(u)]
    return {**answer, "users": users, "count": len(users)}


async def people_for(gw: Gateway, principal: Principal) -> set[str] | None:
    """Whom `principal` may see (None: the whole tenant), asking the message service for their conversations."""
    if sees_tenant(principal.roles, gw.settings.presence_visible_roles):
        return None
    found = await gw.bus.call(principal, m.LIST_CONVERSATIONS, {"memberOnly": True})
    return people_of(found["conversations"], principal.user_id)


class PresenceAudience:
    """This replica's side of the rule: places its sockets in the presence rooms they are entitled to."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._rooms: dict[str, set[str]] = {}  # sid -> presence rooms it is in (scoped)
        self._people: dict[str, set[str]] = {}  # restricted sid -> user ids it may see
        self._watching: defaultdict[tuple[str, str], set[str]] = defaultdict(set)  # (tenant, conv) -> sids
        self._watched: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)  # sid -> (tenant, conv)

    def install(self) -> None:
        self.gw.on_principal.append(self.place)
        self.gw.on_dialect.append(self.replace)
        self.gw.on_disconnect.append(self.forget)
        self.gw.delivery.listeners.append(self.on_event)

    def restricted(self, principal: Principal) -> bool:
        return not sees_tenant(principal.roles, self.gw.settings.presence_visible_roles)

    def visible(self, conn: Connection, answer: dict[str, Any]) -> dict[str, Any]:
        """`active-users` or `users-stats` as `conn` may see it (`limit_to`)."""
        return limit_to(self._people.get(conn.sid), answer)

    async def place(self, gw: Gateway, conn: Connection) -> None:
        principal = conn.principal
        assert principal is not None
        restricted = self.restricted(principal)
        if conn.namespace != "/":
            if restricted:
                await gw.sio.enter_room(conn.sid, scoped(principal.tenant, RESTRICTED_ROOM), namespace=conn.namespace)
            return
        if restricted:
            self._people[conn.sid] = set()
            try:
                found = await gw.bus.call(principal, m.LIST_CONVERSATIONS, {"memberOnly": True})
                self._watch(conn, principal, found["conversations"])
            except Exception:
                # seeing nobody is the safe side; the socket itself is fine
                log.warning("presence.audience_lookup_failed", sid=conn.sid)
        await self._enter(conn)

    async def replace(self, gw: Gateway, conn: Connection) -> None:
        if conn.principal is not None and conn.namespace == "/" and conn.sid in self._rooms:
            await self._enter(conn)

    async def forget(self, gw: Gateway, conn: Connection) -> None:
        self._rooms.pop(conn.sid, None)
        self._people.pop(conn.sid, None)
        for key in self._watched.pop(conn.sid, ()):
            self._watching[key].discard(conn.sid)
            if not self._watching[key]:
                del self._watching[key]

    def _watch(self, conn: Connection, principal: Principal, conversations: list[dict[str, Any]]) -> None:
        self._people.setdefault(conn.sid, set()).update(people_of(conversations, principal.user_id))
        for c in conversations:
            key = (principal.tenant, c["conversationId"])
            self._watching[key].add(conn.sid)
            self._watched[conn.sid].add(key)

    async def _enter(self, conn: Connection) -> None:
        """Move `conn` into the rooms the rule and its dialect entitle it to, out of any others."""
        principal = conn.principal
        assert principal is not None
        dialect = presence_dialect(conn)
        wanted: set[str] = set()
        if dialect is not None:
            if conn.sid in self._people:
                wanted = {scoped(principal.tenant, presence_of_room(dialect, u)) for u in self._people[conn.sid]}
            else:
                wanted = {scoped(principal.tenant, presence_room(dialect))}
        current = self._rooms.get(conn.sid, set())
        for room in current - wanted:
            await self.gw.sio.leave_room(conn.sid, room, namespace=conn.namespace)
        for room in wanted - current:
            await self.gw.sio.enter_room(conn.sid, room, namespace=conn.namespace)
        self._rooms[conn.sid] = wanted

    async def on_event(self, envelope: Envelope) -> None:
        """New people in a restricted viewer's conversations: a new conversation, new members, an agent's answer."""
        if not self._people:
            return
        if envelope.type == m.CONVERSATION_CREATED:
            conversation = envelope.data
            for user_id in {p["userId"] for p in conversation.get("participants") or ()}:
                room = scoped(envelope.tenant, user_room(user_id))
                for sid, _ in list(self.gw.sio.manager.get_participants("/", room)):
                    conn = self.gw.connections.get(sid)
                    if conn is not None and conn.principal is not None and sid in self._people:
                        self._watch(conn, conn.principal, [conversation])
                        await self._enter(conn)
            return
        if envelope.type == m.MESSAGE_CREATED:
            newcomers = [envelope.data.get("senderId")]
        elif envelope.type == m.MEMBERS_ADDED:
            newcomers = list(envelope.data.get("userIds") or ())
        else:
            return
        for sid in list(self._watching.get((envelope.tenant, envelope.data.get("conversationId", "")), ())):
            conn = self.gw.connections.get(sid)
            people = self._people.get(sid)
            if conn is None or conn.principal is None or people is None:
                continue
            added = {u for u in newcomers if isinstance(u, str) and u != conn.principal.user_id} - people
            if added:
                people.update(added)
                await self._enter(conn)
