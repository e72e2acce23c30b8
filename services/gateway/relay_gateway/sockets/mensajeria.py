"""seed-003 SERVITECH mensajería on `/`: late `autenticar`, conversations, messages, receipts, typing.

Handlers translate the Spanish wire into Relay commands; what the services announce comes back
through the dialect table (`dialects/mensajeria.py`), never emitted from here, except what only
this socket should see (`autenticado`, `unido_conversacion`, `mensaje_enviado`).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from relay_auth import AuthError
from relay_contracts import ErrorCode, RelayError, utcnow_iso
from relay_contracts import messages as m
from relay_contracts import receipts as r
from relay_contracts.routing import interest_pattern
from relay_log import get_logger

from relay_gateway.context import Connection, Gateway
from relay_gateway.conversation_presence import ConversationPresence
from relay_gateway.dialects import mensajeria as es
from relay_gateway.presence import track_conversation
from relay_gateway.rooms import conversation_rooms, mensajeria_room, scoped
from relay_gateway.sockets.lifecycle import attach_principal
from relay_gateway.sockets.router import SocketRouter

log = get_logger(__name__)

NAMESPACE = "/"


class Wire(BaseModel):
    # seed clients send extra fields (socketInfo, UI state); they are ignored, never stored
    model_config = ConfigDict(extra="ignore")


class Autenticar(Wire):
    usuarioId: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    token: Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class ConversacionRef(Wire):
    conversacionId: m.Id


class Archivo(Wire):
    nombre: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    tamano: int = Field(ge=0, le=1_000_000_000)
    tipo: Annotated[str, StringConstraints(min_length=3, max_length=127, pattern=r"^[\w.+-]+/[\w.+-]+$")]


Tipo = Literal["texto", "imagen", "archivo", "audio", "video"]


class Contenido(Wire):
    texto: str = Field(default="", max_length=100_000)  # the configured limit is the service's to check
    tipo: Tipo | None = None
    archivo: Archivo | None = None
    metadatos: m.Metadata | None = None


class EnviarMensaje(Wire):
    conversacionId: m.Id
    contenido: Contenido
    tipo: Tipo | None = None
    respuestaA: m.Id | None = None
    prioridad: Literal["normal", "alta", "urgente", "high", "urgent"] = "normal"
    clientMessageId: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None


class MarcarLeido(Wire):
    conversacionId: m.Id
    mensajeId: m.Id | None = None


class AgregarReaccion(Wire):
    mensajeId: m.Id
    tipo: Literal["like", "love", "laugh", "surprise", "sad"]
    conversacionId: m.Id | None = None  # seed-003 names only the message; Relay finds its conversation


class Escribiendo(Wire):
    conversacionId: m.Id
    escribiendo: bool = True


def _principal(conn: Connection) -> Any:
    assert conn.principal is not None  # the router refuses unauthenticated sockets before we get here
    return conn.principal


class Typing:
    """Who is typing where on this replica; a state nobody refreshes is cleared (TYPING_TTL_SECONDS, SPEC §3)."""

    def __init__(self, gw: Gateway) -> None:
        self._gw = gw
        self._timers: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def set(self, conn: Connection, conversation_id: str, typing: bool) -> None:
        key = (conn.sid, conversation_id)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if typing:
            self._timers[key] = asyncio.create_task(self._expire(conn, conversation_id))
        await self._announce(conn, conversation_id, typing)

    async def stop_all(self, conn: Connection) -> None:
        for sid, conversation_id in [k for k in self._timers if k[0] == conn.sid]:
            self._timers.pop((sid, conversation_id)).cancel()
            await self._announce(conn, conversation_id, False)

    async def _expire(self, conn: Connection, conversation_id: str) -> None:
        await asyncio.sleep(self._gw.settings.typing_ttl_seconds)
        self._timers.pop((conn.sid, conversation_id), None)
        await self._announce(conn, conversation_id, False)

    async def _announce(self, conn: Connection, conversation_id: str, typing: bool) -> None:
        principal = _principal(conn)
        body = {
            "conversacionId": conversation_id,
            "usuarioId": principal.user_id,
            "escribiendo": typing,
            "timestamp": utcnow_iso(),
        }
        # through the Redis adapter: the room's sockets on every replica, never the typist
        room = scoped(principal.tenant, mensajeria_room(conversation_id))
        await self._gw.sio.emit("usuario_escribiendo", body, room=room, skip_sid=conn.sid, namespace=NAMESPACE)


def register(router: SocketRouter) -> None:
    gw = router.gw
    online = ConversationPresence(gw.redis, gw.settings.relay_instance)
    typing = Typing(gw)

    @router.on("autenticar", Autenticar, authenticated=False, limit="auth")
    async def autenticar(gw: Gateway, conn: Connection, body: Autenticar) -> dict[str, Any]:
        """Late authentication: a valid token whose subject is `usuarioId`; answers `autenticado`."""
        try:
            principal = gw.auth.verifier.verify(body.token)
        except AuthError as exc:
            raise RelayError(exc.code, exc.message, field="token") from exc
        if principal.user_id != body.usuarioId:
            raise RelayError(ErrorCode.AUTH_REQUIRED, "usuarioId does not match the token", field="usuarioId")
        if conn.principal is None:
            await attach_principal(gw, conn, principal)
            log.info("socket.late_authenticated", user_id=principal.user_id, tenant=principal.tenant)
        elif (conn.principal.user_id, conn.principal.tenant) != (principal.user_id, principal.tenant):
            raise RelayError(ErrorCode.PERMISSION_DENIED, "this socket is already another user's", field="usuarioId")
        reply = {"usuarioId": principal.user_id, "usuario": principal.public(), "timestamp": utcnow_iso()}
        await gw.sio.emit("autenticado", {"success": True, **reply}, to=conn.sid, namespace=NAMESPACE)
        return {"success": True, **reply}

    @router.on("unirse_conversacion", ConversacionRef, limit="join")
    async def unirse(gw: Gateway, conn: Connection, ref: ConversacionRef) -> dict[str, Any]:
        """Join a conversation you may read; answers `unido_conversacion` with `participantes_conectados`."""
        principal = _principal(conn)
        cid = ref.conversacionId
        # the message service decides who may read: NOT_FOUND / PERMISSION_DENIED otherwise
        conversation = await gw.bus.call(principal, m.CHECK_ACCESS, {"conversationId": cid})
        await gw.delivery.interest.add(conn.sid, interest_pattern(principal.tenant, "conv", cid))
        await gw.sio.enter_room(conn.sid, scoped(principal.tenant, mensajeria_room(cid)), namespace=NAMESPACE)
        await online.join(principal.tenant, cid, principal.user_id, conn.sid)
        await track_conversation(gw, conn, cid, joined=True)  # seed-003 statistics: conversacionesActivas
        reply = {
            "conversacionId": cid,
            "participantes_conectados": await online.connected(principal.tenant, cid),
            "conversacion": es.conversacion(conversation, viewer=principal.user_id),
            "timestamp": utcnow_iso(),
        }
        await gw.sio.emit("unido_conversacion", reply, to=conn.sid, namespace=NAMESPACE)
        return {"success": True, **reply}

    @router.on("salir_conversacion", ConversacionRef)
    async def salir(gw: Gateway, conn: Connection, ref: ConversacionRef) -> dict[str, Any]:
        """Leave a conversation's room: no more `nuevo_mensaje` / `usuario_escribiendo` from it."""
        principal = _principal(conn)
        cid = ref.conversacionId
        if online.joined(conn.sid, principal.tenant, cid):
            await typing.set(conn, cid, False)
        await gw.sio.leave_room(conn.sid, scoped(principal.tenant, mensajeria_room(cid)), namespace=NAMESPACE)
        await online.leave(principal.tenant, cid, conn.sid)
        await track_conversation(gw, conn, cid, joined=False)
        # the conversation's events also feed the support rooms; keep them while this socket is there
        still_in = set(gw.sio.rooms(conn.sid, namespace=NAMESPACE))
        if not any(scoped(principal.tenant, room) in still_in for room in conversation_rooms(cid)):
            await gw.delivery.interest.remove(conn.sid, interest_pattern(principal.tenant, "conv", cid))
        return {"success": True, "conversacionId": cid, "timestamp": utcnow_iso()}

    @router.on("enviar_mensaje", EnviarMensaje, limit="message")
    async def enviar(gw: Gateway, conn: Connection, body: EnviarMensaje) -> dict[str, Any]:
        """Send (needs `puedeEnviar`); answers `mensaje_enviado`, the room gets `nuevo_mensaje`."""
        principal = _principal(conn)
        contenido = body.contenido
        tipo = body.tipo or contenido.tipo or ("archivo" if contenido.archivo else "texto")
        data: dict[str, Any] = {
            "conversationId": body.conversacionId,
            "content": contenido.texto,
            "type": es.TYPE[tipo],
            "priority": es.PRIORITY[body.prioridad],
            # without a client id, this emit's own id makes a broker redelivery idempotent
            "clientMessageId": body.clientMessageId or f"sock-{uuid.uuid4()}",
        }
        if body.respuestaA:
            data["replyTo"] = body.respuestaA
        if contenido.metadatos:
            data["metadata"] = contenido.metadatos
        if contenido.archivo:
            a = contenido.archivo
            data["attachment"] = {"url": a.url, "fileName": a.nombre, "fileSize": a.tamano, "mimeType": a.tipo}
        message = await gw.bus.call(principal, m.SEND_MESSAGE, data)
        reply = {
            "mensajeId": message["messageId"],
            "conversacionId": message["conversationId"],
            "estado": "enviado",
            "seq": message["seq"],
            "fechaEnvio": message["createdAt"],
            "clientMessageId": message.get("clientMessageId"),
            "mensaje": es.mensaje(message),
        }
        await gw.sio.emit("mensaje_enviado", reply, to=conn.sid, namespace=NAMESPACE)
        return {"success": True, **reply}

    @router.on("marcar_leido", MarcarLeido, limit="read")
    async def marcar_leido(gw: Gateway, conn: Connection, body: MarcarLeido) -> dict[str, Any]:
        """Read receipt for one message (`mensajeId`) or all; the room gets `mensaje_leido`, the ack `noLeidos`."""
        principal = _principal(conn)
        data: dict[str, Any] = {"conversationId": body.conversacionId}
        if body.mensajeId:
            data["messageId"] = body.mensajeId
        result = await gw.bus.call(principal, r.MARK_READ, data)
        return {
            "success": True,
            "conversacionId": body.conversacionId,
            "mensajesIds": result["messageIds"],
            "noLeidos": result["unreadCount"],
            "fechaLectura": result["readAt"],
        }

    @router.on("escribiendo", Escribiendo, limit="typing")
    async def escribiendo(gw: Gateway, conn: Connection, body: Escribiendo) -> dict[str, Any]:
        """Typing on/off in a joined conversation; the others get `usuario_escribiendo` (expires after 5 s)."""
        principal = _principal(conn)
        if not online.joined(conn.sid, principal.tenant, body.conversacionId):
            raise RelayError(ErrorCode.PERMISSION_DENIED, "join the conversation first", field="conversacionId")
        await typing.set(conn, body.conversacionId, body.escribiendo)
        return {"success": True, "conversacionId": body.conversacionId, "escribiendo": body.escribiendo}

    @router.on("agregar_reaccion", AgregarReaccion, limit="message")
    async def agregar_reaccion(gw: Gateway, conn: Connection, body: AgregarReaccion) -> dict[str, Any]:
        """React (`like`, `love`, `laugh`, `surprise`, `sad`) to a message; the room gets `reaccion_agregada`."""
        principal = _principal(conn)
        cid = body.conversacionId
        if cid is None:
            cid = (await gw.bus.call(principal, m.LOCATE_MESSAGE, {"messageId": body.mensajeId}))["conversationId"]
        data = {"conversationId": cid, "messageId": body.mensajeId, "emoji": es.REACCION_EMOJI[body.tipo]}
        result = await gw.bus.call(principal, m.REACT_MESSAGE, {**data, "action": "add"})
        return {
            "success": True,
            "mensajeId": body.mensajeId,
            "conversacionId": cid,
            "tipo": body.tipo,
            "reacciones": es.reacciones(result.get("reactions", [])),
        }

    async def forget(gw: Gateway, conn: Connection) -> None:
        if conn.principal is not None:
            await typing.stop_all(conn)
        await online.leave_all(conn.sid)

    gw.on_disconnect.append(forget)
