"""seed-001 typing: `typing:start` / `typing:stop` → `user:typing` / `user:stop-typing` in `chat:{id}`.

Relayed through the Redis manager, so members on every replica get it. A typing state that is
not refreshed within `TYPING_TTL_SECONDS` (5 s) ends by itself with `user:stop-typing`
(`reason: "expired"`), as does every state of a socket that leaves the chat or disconnects, and a
typist's state when their message arrives (`reason: "sent"`), so no client shows "typing…" forever.
Refreshes are relayed at most once a second.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from relay_contracts import Envelope, ErrorCode, RelayError, utcnow_iso
from relay_contracts import messages as m
from relay_log import get_logger

from relay_gateway.context import Connection, Gateway
from relay_gateway.rooms import parse_chat_ref, scoped, support_room
from relay_gateway.sockets.router import SocketRouter

log = get_logger(__name__)

REFRESH_RELAY_SECONDS = 1.0


class TypingRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    chatId: str = Field(min_length=1, max_length=200)


@dataclass
class TypingState:
    expiry: asyncio.Task[None]
    relayed_at: float


class Typists:
    """Typing states of this replica's sockets, one per (sid, chat), each with its expiry timer."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.ttl = gw.settings.typing_ttl_seconds
        self._states: dict[tuple[str, str], TypingState] = {}

    def _room(self, conn: Connection, chat_id: str) -> str:
        assert conn.principal is not None
        return scoped(conn.principal.tenant, support_room(chat_id))

    def _body(self, conn: Connection, chat_id: str, **extra: Any) -> dict[str, Any]:
        assert conn.principal is not None
        p = conn.principal
        return {"userId": p.user_id, "username": p.username, "chatId": chat_id, "timestamp": utcnow_iso(), **extra}

    async def start(self, conn: Connection, chat_id: str) -> bool:
        room = self._room(conn, chat_id)
        if room not in self.gw.sio.rooms(conn.sid, namespace=conn.namespace):
            raise RelayError(ErrorCode.PERMISSION_DENIED, "join the chat before typing in it", field="chatId")
        key = (conn.sid, chat_id)
        state = self._states.get(key)
        now = time.monotonic()
        relayed_at = state.relayed_at if state is not None else float("-inf")
        relay = now - relayed_at >= REFRESH_RELAY_SECONDS
        if state is not None:
            state.expiry.cancel()
        expiry = asyncio.create_task(self._expire(conn, chat_id), name=f"typing-expiry-{conn.sid}")
        self._states[key] = TypingState(expiry, now if relay else relayed_at)
        if relay:
            # through the Redis manager: members on other replicas get it too
            await self.gw.sio.emit(
                "user:typing", self._body(conn, chat_id), room=room, skip_sid=conn.sid, namespace=conn.namespace
            )
        return relay

    async def stop(self, conn: Connection, chat_id: str, *, reason: str = "stopped") -> bool:
        state = self._states.pop((conn.sid, chat_id), None)
        if state is None:
            return False
        if asyncio.current_task() is not state.expiry:
            state.expiry.cancel()
        await self.gw.sio.emit(
            "user:stop-typing",
            self._body(conn, chat_id, reason=reason),
            room=self._room(conn, chat_id),
            skip_sid=conn.sid,
            namespace=conn.namespace,
        )
        return True

    async def _expire(self, conn: Connection, chat_id: str) -> None:
        await asyncio.sleep(self.ttl)
        try:
            await self.stop(conn, chat_id, reason="expired")
        except Exception:
            log.exception("typing.expiry_failed", sid=conn.sid)

    async def stop_all(self, gw: Gateway, conn: Connection) -> None:
        for _, chat_id in [k for k in self._states if k[0] == conn.sid]:
            await self.stop(conn, chat_id, reason="disconnected")

    async def on_event(self, envelope: Envelope) -> None:
        """A message from a typist ends their typing in that chat (`reason: "sent"`), whichever path sent it."""
        if envelope.type != m.MESSAGE_CREATED or envelope.data.get("isInternal"):
            return
        sender, chat_id = envelope.data.get("senderId"), envelope.data.get("conversationId")
        for sid, chat in [k for k in self._states if k[1] == chat_id]:
            conn = self.gw.connections.get(sid)
            principal = conn.principal if conn else None
            if (
                conn is not None
                and principal is not None
                and (principal.tenant, principal.user_id)
                == (
                    envelope.tenant,
                    sender,
                )
            ):
                await self.stop(conn, chat, reason="sent")


def register(router: SocketRouter) -> Typists:
    typists = Typists(router.gw)
    router.gw.on_disconnect.append(typists.stop_all)
    router.gw.delivery.listeners.append(typists.on_event)

    @router.on("typing:start", TypingRef, limit="typing")
    async def typing_start(gw: Gateway, conn: Connection, ref: TypingRef) -> dict[str, Any]:
        """`user:typing` to the chat's other members on every replica; expires after 5 s without a refresh."""
        chat_id, _ = parse_chat_ref(ref.chatId)
        relayed = await typists.start(conn, chat_id)
        return {"success": True, "chatId": chat_id, "relayed": relayed, "expiresInMs": int(typists.ttl * 1000)}

    @router.on("typing:stop", TypingRef, limit="typing")
    async def typing_stop(gw: Gateway, conn: Connection, ref: TypingRef) -> dict[str, Any]:
        """`user:stop-typing` to the chat's other members."""
        chat_id, _ = parse_chat_ref(ref.chatId)
        return {"success": True, "chatId": chat_id, "relayed": await typists.stop(conn, chat_id)}

    return typists
