"""seed-003 SERVITECH mensajería: Spanish names and shapes for conversations, messages and receipts.

The stored conversation and message are Relay's; this module only renders them. `nuevo_mensaje`
goes to the conversation's mensajería room, so a seed-001 client in `chat:{id}` and a seed-003
client in the same conversation each get their own event once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from relay_contracts import Envelope
from relay_contracts import messages as m
from relay_contracts import receipts as r

from relay_gateway.dialects import Delivery, Table
from relay_gateway.rooms import mensajeria_room

NAMESPACE = "/"

TIPO = {"text": "texto", "image": "imagen", "file": "archivo", "audio": "audio", "video": "video"}
TYPE = {es: en for en, es in TIPO.items()}
PRIORIDAD = {"normal": "normal", "high": "alta", "urgent": "urgente"}
PRIORITY = {"normal": "normal", "alta": "high", "urgente": "urgent", "high": "high", "urgent": "urgent"}
ESTADO = {"sent": "enviado", "delivered": "entregado", "read": "leido"}
TIPO_CONVERSACION = {"direct": "individual", "group": "grupal", "support": "soporte", "channel": "canal"}
CONVERSATION_TYPE = {es: en for en, es in TIPO_CONVERSACION.items()}


def archivo(attachment: dict[str, Any] | None) -> dict[str, Any] | None:
    if not attachment:
        return None
    return {
        "nombre": attachment["fileName"],
        "url": attachment["url"],
        "tamano": attachment["fileSize"],
        "tipo": attachment["mimeType"],
    }


def mensaje(msg: dict[str, Any]) -> dict[str, Any]:
    """A stored message in seed-003's shape, plus `seq` for gap recovery."""
    tipo = TIPO.get(msg["type"], "texto")
    return {
        "_id": msg["messageId"],
        "id": msg["messageId"],
        "conversacion": msg["conversationId"],
        "remitente": msg["senderId"],
        "contenido": {
            "texto": msg["content"],
            "tipo": tipo,
            "archivo": archivo(msg.get("attachment")),
            "metadatos": msg.get("metadata") or {},
        },
        "tipo": tipo,
        "respuestaA": msg.get("replyTo"),
        "prioridad": PRIORIDAD.get(msg.get("priority", "normal"), "normal"),
        "estado": ESTADO.get(msg.get("deliveryState", "sent"), "enviado"),
        "fechaEnvio": msg["createdAt"],
        "lecturas": [{"usuario": x["userId"], "fechaLectura": x["at"]} for x in msg.get("reads", [])],
        "reacciones": reacciones(msg.get("reactions", [])),
        "seq": msg["seq"],
        "clientMessageId": msg.get("clientMessageId"),
    }


# seed-003 names five reactions; Relay stores emoji (SPEC §3), shared with the channels dialect
REACCION_EMOJI = {"like": "👍", "love": "❤️", "laugh": "😂", "surprise": "😮", "sad": "😢"}
EMOJI_REACCION = {emoji: tipo for tipo, emoji in REACCION_EMOJI.items()}


def reacciones(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Relay's reaction summary `[{emoji, count, users}]` as seed-003's `[{usuario, tipo}]`, one per user."""
    return [
        {"usuario": user, "tipo": EMOJI_REACCION.get(s["emoji"], s["emoji"])}
        for s in summary
        for user in s.get("users", [])
    ]


def participante(p: dict[str, Any]) -> dict[str, Any]:
    perms = p.get("permissions", {})
    return {
        "usuario": p["userId"],
        "rol": p.get("role"),
        "fechaIngreso": p.get("joinedAt"),
        "activo": True,
        "permisos": {
            "puedeEnviar": bool(perms.get("canSend", True)),
            "puedeEliminar": bool(perms.get("canDelete", False)),
            "puedeModerar": bool(perms.get("canModerate", False)),
        },
    }


def conversacion(conv: dict[str, Any], viewer: str | None = None) -> dict[str, Any]:
    cid = conv["conversationId"]
    unread = conv.get("unreadCount")
    return {
        "_id": cid,
        "id": cid,
        "conversacionId": cid,
        "codigoConversacion": cid,
        "participantes": [participante(p) for p in conv.get("participants", [])],
        "tipo": TIPO_CONVERSACION.get(conv.get("type") or "", conv.get("type")),
        "configuracion": {"nombrePersonalizado": conv.get("subject"), "descripcion": conv.get("description")},
        "estadisticas": {
            "totalMensajes": conv.get("totalMessages", 0),
            "ultimoMensaje": conv.get("lastMessageAt"),
            "mensajesNoLeidos": {viewer: unread} if viewer is not None and unread is not None else {},
        },
        **({"noLeidos": unread} if unread is not None else {}),
        "estado": conv.get("status"),
        "activa": conv.get("status") != "CLOSED",
        "ultimoSeq": conv.get("lastSeq", 0),
        "fechaCreacion": conv.get("createdAt"),
        "fechaUltimaActividad": conv.get("lastActivityAt") or conv.get("lastMessageAt") or conv.get("createdAt"),
    }


def _nuevo_mensaje(env: Envelope) -> Iterator[Delivery]:
    msg = env.data
    if msg.get("isInternal"):
        return  # seed-003 has no internal notes; its rooms may hold visitors
    cid = msg["conversationId"]
    payload = {"conversacionId": cid, "mensaje": mensaje(msg), "seq": msg["seq"], "timestamp": msg["createdAt"]}
    yield Delivery(NAMESPACE, mensajeria_room(cid), "nuevo_mensaje", payload)


def _mensaje_leido(env: Envelope) -> Iterator[Delivery]:
    read = r.MessageRead.model_validate(env.data)
    payload = {
        "conversacionId": read.conversationId,
        "mensajeId": read.messageIds[0] if len(read.messageIds) == 1 and not read.all else None,
        "mensajesIds": list(read.messageIds),
        "todos": read.all,
        "leidoPor": read.readerId,
        "fechaLectura": read.readAt,
    }
    yield Delivery(NAMESPACE, mensajeria_room(read.conversationId), "mensaje_leido", payload)


def _reaccion(env: Envelope) -> Iterator[Delivery]:
    data = env.data
    payload = {
        "mensajeId": data["messageId"],
        "conversacionId": data["conversationId"],
        "usuarioId": data["userId"],
        "tipo": EMOJI_REACCION.get(data["emoji"], data["emoji"]),
        "reacciones": reacciones(data.get("reactions", [])),
        "seq": data["seq"],
        "timestamp": data.get("at", env.occurredAt),
    }
    event = "reaccion_agregada" if data["action"] == "add" else "reaccion_eliminada"
    yield Delivery(NAMESPACE, mensajeria_room(data["conversationId"]), event, payload)


TABLE: Table = {
    m.MESSAGE_CREATED: [_nuevo_mensaje],
    r.MESSAGE_READ: [_mensaje_leido],
    m.REACTION_CHANGED: [_reaccion],
}
