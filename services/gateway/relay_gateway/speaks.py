"""Which dialect a socket speaks, so it gets each presence transition once, in that dialect.

A socket's dialect is its handshake hint (`auth.dialect` or `?dialect=`) or else the feature of the
first dialect-specific event it sends (`chat:join` → support, `get-active-users` → users,
`autenticar` → mensajeria …); events every dialect shares (`ping`, `health-check`, `test`) decide
nothing. Once known it does not change.
"""

from __future__ import annotations

from typing import Any

from relay_gateway.context import Connection, Gateway

# feature names (features.py) that are a dialect on the wire
DIALECTS = frozenset({"support", "users", "mensajeria", "orders", "channels"})
# the presence events each dialect has (SPEC §4); support (seed-001) and orders (seed-004) have none
PRESENCE_DIALECTS = frozenset({"users", "mensajeria"})
# a socket on `/` that has not shown its dialect yet gets seed-002's events, the platform's user list
UNKNOWN_DIALECT_PRESENCE = "users"


def hinted(auth: Any, query: dict[str, str]) -> str | None:
    """The dialect a client names at the handshake, if it is one."""
    raw = auth.get("dialect") if isinstance(auth, dict) else None
    raw = raw if isinstance(raw, str) else query.get("dialect")
    return raw if raw in DIALECTS else None


def presence_dialect(conn: Connection) -> str | None:
    """The dialect `conn` gets presence in on `/`, or None when its dialect announces no presence."""
    if conn.dialect is None:
        return UNKNOWN_DIALECT_PRESENCE
    return conn.dialect if conn.dialect in PRESENCE_DIALECTS else None


async def spoke(gw: Gateway, conn: Connection, feature: str) -> None:
    """`conn` sent an event of `feature`: the first dialect-specific one decides its dialect."""
    if conn.dialect is not None or feature not in DIALECTS:
        return
    conn.dialect = feature
    for hook in gw.on_dialect:
        await hook(gw, conn)
