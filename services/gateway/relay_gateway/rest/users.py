"""seed-002 REST ops API (`/websocket/...`) and seed-003 statistics."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from relay_auth import Principal
from relay_contracts import ErrorCode, RelayError, utcnow_iso
from relay_contracts import presence as p
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay_gateway.presence_audience import limit_to, people_for
from relay_gateway.rest.edge import caller, documented, gateway, read_body
from relay_gateway.rooms import role_room, scoped, tenant_room, user_room
from relay_gateway.sockets.users import check_text, emit_everywhere, require_online, sender

MAX_BODY = 64 * 1024
NotificationType = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]


class Notify(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=100_000)
    type: NotificationType = "info"


class NotifyUser(Notify):
    userId: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class NotifyRole(Notify):
    role: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


async def _admin(request: Request) -> Principal:
    principal = await caller(request)
    if not principal.is_admin:
        raise RelayError(ErrorCode.PERMISSION_DENIED, "an admin role is required")
    return principal


async def active_users(request: Request) -> JSONResponse:
    """Active users of the caller's tenant with their stats: `{users, count, stats}`."""
    principal = await caller(request)
    gw = gateway(request)
    people = await people_for(gw, principal)  # who sees whose presence: presence_audience.py
    users = limit_to(people, await gw.bus.call(principal, p.ACTIVE_USERS, {}))
    stats = limit_to(people, await gw.bus.call(principal, p.STATS, {}))
    return JSONResponse({**users, "stats": stats})


async def users_stats(request: Request) -> JSONResponse:
    """seed-002 stats: `{totalUsers, totalSockets, usersByRole, connectionTimes}`."""
    principal = await caller(request)
    gw = gateway(request)
    return JSONResponse(limit_to(await people_for(gw, principal), await gw.bus.call(principal, p.STATS, {})))


def _notification(principal: Principal, body: Notify, gw: Any) -> dict[str, Any]:
    return {
        "from": sender(principal),
        "message": check_text(gw, body.message),
        "type": body.type,
        "timestamp": utcnow_iso(),
    }


@documented(body=NotifyUser)
async def send_notification(request: Request) -> JSONResponse:
    """Admin: `notification` to every socket of one user (404 when offline)."""
    principal = await _admin(request)
    gw = gateway(request)
    body = await read_body(request, NotifyUser, max_bytes=MAX_BODY)
    payload = _notification(principal, body, gw)
    await require_online(gw, principal, body.userId, "userId")
    await emit_everywhere(gw, "notification", payload, scoped(principal.tenant, user_room(body.userId)))
    return JSONResponse({"success": True, "message": f"Notification sent to user {body.userId}", **payload})


@documented(body=Notify)
async def broadcast(request: Request) -> JSONResponse:
    """Admin: `broadcast-notification` to every socket of the tenant."""
    principal = await _admin(request)
    gw = gateway(request)
    body = await read_body(request, Notify, max_bytes=MAX_BODY)
    payload = _notification(principal, body, gw)
    await emit_everywhere(gw, "broadcast-notification", payload, scoped(principal.tenant, tenant_room()))
    return JSONResponse({"success": True, "message": "Broadcast sent", **payload})


@documented(body=NotifyRole)
async def send_to_role(request: Request) -> JSONResponse:
    """Admin: `role-notification` to the tenant's sockets whose user has the role (case-insensitive)."""
    principal = await _admin(request)
    gw = gateway(request)
    body = await read_body(request, NotifyRole, max_bytes=MAX_BODY)
    payload = {**_notification(principal, body, gw), "targetRole": body.role}
    await emit_everywhere(gw, "role-notification", payload, scoped(principal.tenant, role_room(body.role)))
    return JSONResponse({"success": True, "message": f"Notification sent to role {body.role}", **payload})


async def mensajeria_statistics(request: Request) -> JSONResponse:
    """seed-003 statistics: `{usuariosConectados, conversacionesActivas, totalSockets, timestamp}`."""
    principal = await caller(request)
    return JSONResponse(await gateway(request).bus.call(principal, p.STATISTICS, {}))


ROUTES = [
    Route("/websocket/active-users", active_users, methods=["GET"]),
    Route("/websocket/users-stats", users_stats, methods=["GET"]),
    Route("/websocket/send-notification", send_notification, methods=["POST"]),
    Route("/websocket/broadcast", broadcast, methods=["POST"]),
    Route("/websocket/send-to-role", send_to_role, methods=["POST"]),
    Route("/api/mensajeria/estadisticas", mensajeria_statistics, methods=["GET"]),
]
