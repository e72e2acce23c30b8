"""The gateway's whole attack surface, read from its own registrations (as docs/reference.md is):
every inbound socket event with its schema, every REST route with its methods."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from relay_gateway.bootstrap import build
from relay_gateway.features import FEATURES
from relay_gateway.settings import GatewaySettings
from relay_gateway.sockets.router import Registration, SocketRouter
from starlette.routing import Route


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # with `{param}` placeholders


@cache
def _router() -> SocketRouter:
    router = build(GatewaySettings()).router
    assert router is not None
    return router


def socket_events() -> list[Registration]:
    return list(_router().registry)


def rest_endpoints() -> list[Endpoint]:
    found = []
    for route in (route for feature in FEATURES for route in feature.routes):
        if isinstance(route, Route) and route.methods:
            found.extend(Endpoint(m, route.path) for m in sorted(route.methods - {"HEAD"}))
    return found


def fill(path: str, ids: dict[str, str]) -> str:
    """`/v2/chats/{chat_id}` with the ids given for each parameter (any id for unknown ones)."""
    out = path
    while "{" in out:
        start, end = out.index("{"), out.index("}")
        name = out[start + 1 : end].split(":")[0]
        out = out[:start] + ids.get(name, ids.get("*", "x")) + out[end + 1 :]
    return out
