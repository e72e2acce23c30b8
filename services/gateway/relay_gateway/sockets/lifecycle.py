"""Connect and disconnect on every namespace; `welcome`, `connected`, `health-check`, `test`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from relay_auth import AuthError, Principal
from relay_contracts import utcnow_iso
from relay_contracts.routing import interest_pattern
from relay_log import bound_contextvars, get_logger
from socketio.exceptions import ConnectionRefusedError as SioRefused

from relay_gateway import metrics
from relay_gateway.context import Connection, Gateway
from relay_gateway.identity import environ_headers, query_params, slim_environ
from relay_gateway.rooms import scoped, tenant_room, user_room
from relay_gateway.sockets.router import SocketRouter
from relay_gateway.speaks import hinted
from relay_gateway.tasks import TaskSet

log = get_logger(__name__)

# namespaces where a socket may connect without credentials and authenticate late (`autenticar`)
LATE_AUTH_NAMESPACES = frozenset({"/"})
_grace_timers = TaskSet()


async def attach_principal(gw: Gateway, conn: Connection, principal: Principal) -> None:
    """Make `conn` the principal's: personal and tenant rooms, and the events that target them."""
    conn.principal = principal
    await gw.sio.enter_room(conn.sid, scoped(principal.tenant, user_room(principal.user_id)), namespace=conn.namespace)
    await gw.sio.enter_room(conn.sid, scoped(principal.tenant, tenant_room()), namespace=conn.namespace)
    await gw.delivery.interest.add(conn.sid, interest_pattern(principal.tenant, "user", principal.user_id))
    await gw.delivery.interest.add(conn.sid, interest_pattern(principal.tenant, "tenant"))
    for hook in gw.on_principal:
        await hook(gw, conn)


async def _expire_if_anonymous(gw: Gateway, conn: Connection) -> None:
    """Disconnect a socket that connected without credentials and never authenticated (SPEC §2)."""
    await asyncio.sleep(gw.settings.auth_grace_seconds)
    if gw.connections.get(conn.sid) is not conn or conn.principal is not None:
        return
    log.info("socket.auth_grace_expired", sid=conn.sid)
    body = {"code": "AUTH_REQUIRED", "message": f"not authenticated within {gw.settings.auth_grace_seconds:g} s"}
    await gw.sio.emit("error", body, to=conn.sid, namespace=conn.namespace)
    await gw.sio.disconnect(conn.sid, namespace=conn.namespace)


def register(router: SocketRouter, namespaces: tuple[str, ...] = ("/",)) -> None:
    gw = router.gw

    for namespace in namespaces:

        async def connect(sid: str, environ: dict[str, Any], auth: Any = None, *, namespace: str = namespace) -> None:
            slim_environ(environ)
            headers = environ_headers(environ)
            query = query_params(environ.get("QUERY_STRING", ""))
            try:
                # bad credentials are refused; none at all is allowed where late authentication is
                principal = await gw.auth.from_parts(auth if isinstance(auth, dict) else None, headers, query)
                if principal is None and namespace not in LATE_AUTH_NAMESPACES:
                    principal = await gw.auth.require(None, headers, query)
            except AuthError as exc:
                log.info("socket.refused_handshake", code=exc.code, reason=exc.message)
                # the error's data: a client tells TOKEN_EXPIRED (refresh, retry) from AUTH_REQUIRED
                raise SioRefused(exc.message, {"code": exc.code, "message": exc.message}) from exc
            conn = Connection(sid=sid, namespace=namespace, principal=None, dialect=hinted(auth, query))
            gw.connections[sid] = conn
            if principal is not None:
                await attach_principal(gw, conn, principal)
            else:
                _grace_timers.spawn(_expire_if_anonymous(gw, conn), name=f"relay-auth-grace-{sid}")
            metrics.CONNECTIONS.labels(gw.settings.replica_id, namespace).inc()
            with bound_contextvars(
                sid=sid,
                user_id=principal.user_id if principal else None,
                tenant=principal.tenant if principal else None,
            ):
                log.info("socket.connected", namespace=namespace, anonymous=principal is None)
            await gw.reply(conn, "welcome", {"message": "Welcome to Relay", "clientId": sid, "timestamp": utcnow_iso()})
            user = principal.public() if principal else None
            await gw.reply(conn, "connected", {"message": "Connected", "user": user, "timestamp": utcnow_iso()})

        async def disconnect(sid: str, *why: Any, namespace: str = namespace) -> None:
            conn = gw.connections.pop(sid, None)
            await gw.delivery.interest.remove_all(sid)
            if conn is not None:
                for hook in gw.on_disconnect:
                    try:
                        await hook(gw, conn)
                    except Exception:
                        log.exception("socket.disconnect_hook_failed", sid=sid)
                metrics.CONNECTIONS.labels(gw.settings.replica_id, namespace).dec()
                reason = str(why[0]) if why else None  # python-socketio: client/server disconnect, ping timeout, ...
                log.info(
                    "socket.disconnected", sid=sid, seconds=round(time.time() - conn.connected_at, 3), reason=reason
                )

        async def unhandled(event: str, sid: str, *_: Any) -> dict[str, Any] | None:
            # an event no feature handles: an anonymous socket still learns it must authenticate
            conn = gw.connections.get(sid)
            if conn is None or conn.principal is not None:
                return None
            body = {"code": "AUTH_REQUIRED", "message": f"authenticate before '{event[:64]}'"}
            await gw.sio.emit("error", body, to=sid, namespace=conn.namespace)
            return {"success": False, "error": body, "message": body["message"]}

        gw.sio.on("connect", connect, namespace=namespace)
        gw.sio.on("*", unhandled, namespace=namespace)
        gw.sio.on("disconnect", disconnect, namespace=namespace)

    @router.on("health-check", authenticated=False, inline=True)
    async def health_check(gw: Gateway, conn: Connection, _: Any) -> dict[str, Any]:
        """Liveness probe from the client; answers `health-check {status, replica, timestamp}`."""
        body = {"status": "ok", "replica": gw.settings.replica_id, "timestamp": utcnow_iso()}
        await gw.reply(conn, "health-check", body)
        return {"success": True, **body}

    @router.on("test", authenticated=False, inline=True)
    async def test(gw: Gateway, conn: Connection, data: Any) -> dict[str, Any]:
        """Echo: answers `test {message, echo: true, timestamp}`."""
        message = data.get("message") if isinstance(data, dict) else None
        body = {"message": message if isinstance(message, str) else "", "echo": True, "timestamp": utcnow_iso()}
        await gw.reply(conn, "test", body)
        return {"success": True, **body}

    @router.on("ping", authenticated=False, inline=True)
    async def ping(gw: Gateway, conn: Connection, _: Any) -> dict[str, Any]:
        """Keep-alive (seed-003); answers `pong {timestamp}`."""
        body = {"timestamp": utcnow_iso()}
        await gw.reply(conn, "pong", body)
        return {"success": True, **body}
