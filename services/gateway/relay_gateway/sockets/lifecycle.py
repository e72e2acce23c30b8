"""Connect and disconnect on every namespace; `welcome`, `connected`, `health-check`, `test`."""

from __future__ import annotations

import time
from typing import Any

from relay_auth import AuthError, Principal
from relay_contracts import utcnow_iso
from relay_contracts.routing import interest_pattern
from relay_log import bound_contextvars, get_logger
from socketio.exceptions import ConnectionRefusedError as SioRefused

from relay_gateway import metrics
from relay_gateway.context import Connection, Gateway
from relay_gateway.identity import environ_headers, query_params
from relay_gateway.rooms import scoped, tenant_room, user_room
from relay_gateway.sockets.router import SocketRouter

log = get_logger(__name__)


async def attach_principal(gw: Gateway, conn: Connection, principal: Principal) -> None:
    """Make `conn` the principal's: personal and tenant rooms, and the events that target them."""
    conn.principal = principal
    await gw.sio.enter_room(conn.sid, scoped(principal.tenant, user_room(principal.user_id)), namespace=conn.namespace)
    await gw.sio.enter_room(conn.sid, scoped(principal.tenant, tenant_room()), namespace=conn.namespace)
    await gw.delivery.interest.add(conn.sid, interest_pattern(principal.tenant, "user", principal.user_id))
    await gw.delivery.interest.add(conn.sid, interest_pattern(principal.tenant, "tenant"))
    for hook in gw.on_principal:
        await hook(gw, conn)


def register(router: SocketRouter, namespaces: tuple[str, ...] = ("/",)) -> None:
    gw = router.gw

    for namespace in namespaces:

        async def connect(sid: str, environ: dict[str, Any], auth: Any = None, *, namespace: str = namespace) -> None:
            headers = environ_headers(environ)
            query = query_params(environ.get("QUERY_STRING", ""))
            try:
                principal = await gw.auth.require(auth if isinstance(auth, dict) else None, headers, query)
            except AuthError as exc:
                log.info("socket.refused_handshake", code=exc.code, reason=exc.message)
                raise SioRefused({"code": exc.code, "message": exc.message}) from exc
            conn = Connection(sid=sid, namespace=namespace, principal=None)
            gw.connections[sid] = conn
            await attach_principal(gw, conn, principal)
            metrics.CONNECTIONS.labels(gw.settings.replica_id, namespace).inc()
            with bound_contextvars(sid=sid, user_id=principal.user_id, tenant=principal.tenant):
                log.info("socket.connected", namespace=namespace)
            await gw.sio.emit(
                "welcome",
                {"message": "Welcome to Relay", "clientId": sid, "timestamp": utcnow_iso()},
                to=sid,
                namespace=namespace,
            )
            await gw.sio.emit(
                "connected",
                {"message": "Connected", "user": principal.public(), "timestamp": utcnow_iso()},
                to=sid,
                namespace=namespace,
            )

        async def disconnect(sid: str, *_: Any, namespace: str = namespace) -> None:
            conn = gw.connections.pop(sid, None)
            await gw.delivery.interest.remove_all(sid)
            if conn is not None:
                for hook in gw.on_disconnect:
                    try:
                        await hook(gw, conn)
                    except Exception:
                        log.exception("socket.disconnect_hook_failed", sid=sid)
                metrics.CONNECTIONS.labels(gw.settings.replica_id, namespace).dec()
                log.info("socket.disconnected", sid=sid, seconds=round(time.time() - conn.connected_at, 3))

        gw.sio.on("connect", connect, namespace=namespace)
        gw.sio.on("disconnect", disconnect, namespace=namespace)

    @router.on("health-check", authenticated=False)
    async def health_check(gw: Gateway, conn: Connection, _: Any) -> dict[str, Any]:
        """Liveness probe from the client; answers `health-check {status, replica, timestamp}`."""
        body = {"status": "ok", "replica": gw.settings.replica_id, "timestamp": utcnow_iso()}
        await gw.sio.emit("health-check", body, to=conn.sid, namespace=conn.namespace)
        return {"success": True, **body}

    @router.on("test", authenticated=False)
    async def test(gw: Gateway, conn: Connection, data: Any) -> dict[str, Any]:
        """Echo: answers `test {message, echo: true, timestamp}`."""
        message = data.get("message") if isinstance(data, dict) else None
        body = {"message": message if isinstance(message, str) else "", "echo": True, "timestamp": utcnow_iso()}
        await gw.sio.emit("test", body, to=conn.sid, namespace=conn.namespace)
        return {"success": True, **body}
