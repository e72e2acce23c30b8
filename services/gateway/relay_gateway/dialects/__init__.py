"""Dialects are data: each maps domain events to (namespace, room, wire event, payload) deliveries.

Adding a dialect adds a table here; the delivery loop and the handlers do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from relay_contracts import Envelope


@dataclass(frozen=True)
class Delivery:
    namespace: str
    room: str | tuple[str, ...]  # wire room name(s); the tenant scope is added by the delivery loop
    # several rooms in one delivery reach a socket that sits in more than one of them once
    event: str
    payload: dict[str, Any]


Renderer = Callable[[Envelope], Iterable[Delivery]]
Table = dict[str, list[Renderer]]


def merge(*tables: Table) -> Table:
    merged: Table = {}
    for table in tables:
        for event_type, renderers in table.items():
            merged.setdefault(event_type, []).extend(renderers)
    return merged


def render(table: Table, envelope: Envelope) -> list[Delivery]:
    return [d for renderer in table.get(envelope.type, ()) for d in renderer(envelope)]
