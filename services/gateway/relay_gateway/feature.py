"""A gateway feature: one dialect's event table, REST routes and socket handlers, registered by bootstrap.

Each dialect or surface (support chat, channels, mensajería, users, orders, web pages) is one
`Feature`, listed in `features.FEATURES`. Bootstrap merges the tables, mounts the routes and calls
`register` with the socket router; nothing else needs to know the feature exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from relay_gateway.dialects import Table

if TYPE_CHECKING:
    from relay_gateway.sockets.router import SocketRouter


@dataclass(frozen=True)
class Feature:
    name: str
    table: Table = field(default_factory=dict)
    routes: Sequence[BaseRoute] = ()
    register: Callable[[SocketRouter], None] | None = None
    namespaces: Sequence[str] = ("/",)
