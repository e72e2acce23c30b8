"""Routing keys on `relay.events` / `relay.emit`: `<tenant>.<scope>.<target>.<event type>`.

A gateway replica binds one pattern per target its local sockets care about
(`acme.conv.c42.#`), so its queue only carries events it will deliver.
"""

from __future__ import annotations

from typing import Literal

Scope = Literal["conv", "user", "tenant", "role", "room", "all"]
ANY_TARGET = "_"


def word(value: str) -> str:
    """Escape a value into one topic word (dots split words; * and # are wildcards)."""
    return value.replace("%", "%25").replace(".", "%2E").replace("*", "%2A").replace("#", "%23")


def event_key(tenant: str, scope: Scope, target: str, event_type: str) -> str:
    return f"{word(tenant)}.{scope}.{word(target)}.{event_type}"


def interest_pattern(tenant: str, scope: Scope, target: str = ANY_TARGET) -> str:
    return f"{word(tenant)}.{scope}.{word(target)}.#"
