"""Tokens expire mid-connection: `error {code: TOKEN_EXPIRED}` then disconnect, unless refreshed.

A socket authenticated by a JWT is watched until the token's `exp`. `auth:refresh {token}` with
a valid token of the same subject and tenant replaces the principal and moves the deadline;
session-cookie sockets (no `exp`) are not watched: their session lives in Redis.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from relay_auth import AuthError
from relay_contracts import ErrorCode, RelayError
from relay_log import bound_contextvars, get_logger

from relay_gateway.context import Connection, Gateway
from relay_gateway.deadlines import Deadlines
from relay_gateway.sockets.router import SocketRouter
from relay_gateway.tasks import TaskSet

log = get_logger(__name__)


class Refresh(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=8192)


class ExpiryWatch:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        # one sweep for every socket's deadline, not a timer each (see deadlines.py)
        self._deadlines: Deadlines[str] = Deadlines(self._start_expiry)
        self._expiring = TaskSet()

    async def watch(self, gw: Gateway, conn: Connection) -> None:
        expires_at = conn.principal.expires_at if conn.principal is not None else None
        if expires_at is None:
            self._deadlines.discard(conn.sid)
        else:
            self._deadlines.set(conn.sid, expires_at)

    async def forget(self, gw: Gateway, conn: Connection) -> None:
        self._deadlines.discard(conn.sid)

    def _start_expiry(self, sid: str) -> None:
        conn = self.gw.connections.get(sid)
        if conn is None:
            return
        self._expiring.spawn(self._expire(conn), name=f"expiry-{sid}")

    async def _expire(self, conn: Connection) -> None:
        principal = conn.principal
        with bound_contextvars(sid=conn.sid, user_id=principal.user_id if principal else None):
            log.info("socket.token_expired")
            try:
                await self.gw.sio.emit(
                    "error",
                    {"code": ErrorCode.TOKEN_EXPIRED.value, "message": "token expired; reconnect with a fresh token"},
                    to=conn.sid,
                    namespace=conn.namespace,
                )
                await self.gw.sio.disconnect(conn.sid, namespace=conn.namespace)
            except Exception:
                log.exception("socket.token_expiry_failed")


def register(router: SocketRouter) -> None:
    watch = ExpiryWatch(router.gw)
    router.gw.on_principal.append(watch.watch)
    router.gw.on_disconnect.append(watch.forget)

    @router.on("auth:refresh", Refresh, limit="auth")
    async def refresh(gw: Gateway, conn: Connection, body: Refresh) -> dict[str, Any]:
        """Replace the connection's token with a fresh one of the same subject before it expires."""
        current = conn.principal
        assert current is not None
        try:
            fresh = gw.auth.verifier.verify(body.token)
        except AuthError as exc:
            raise RelayError(exc.code, exc.message, field="token") from exc
        if (fresh.user_id, fresh.tenant) != (current.user_id, current.tenant):
            raise RelayError(ErrorCode.PERMISSION_DENIED, "a refresh token must be for the same user", field="token")
        conn.principal = fresh
        await watch.watch(gw, conn)
        log.info("socket.token_refreshed", expires_at=fresh.expires_at)
        return {"success": True, "userId": fresh.user_id, "expiresAt": fresh.expires_at}
