"""seed-003 REST: `/api/mensajeria/test`, `/api/mensajeria/conversaciones` (create, list, one, messages)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from relay_contracts import ErrorCode, RelayError, utcnow_iso
from relay_contracts import messages as m
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay_gateway.dialects import mensajeria as es
from relay_gateway.rest.edge import caller, documented, gateway, read_body
from relay_gateway.rest.support import HistoryQuery, history_page


class Permisos(BaseModel):
    model_config = ConfigDict(extra="forbid")
    puedeEnviar: bool | None = None
    puedeEliminar: bool | None = None
    puedeModerar: bool | None = None


class Participante(BaseModel):
    model_config = ConfigDict(extra="forbid")
    usuario: m.Id
    rol: Literal["cliente", "experto", "moderador", "admin"] = "cliente"
    permisos: Permisos | None = None

    @field_validator("rol", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class Configuracion(BaseModel):
    model_config = ConfigDict(extra="ignore")
    nombrePersonalizado: Annotated[str, StringConstraints(max_length=200)] | None = None
    descripcion: Annotated[str, StringConstraints(max_length=1000)] | None = None


class CrearConversacion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    participantes: list[Participante] = Field(min_length=1, max_length=500)
    tipo: Literal["individual", "grupal", "soporte"] = "individual"
    configuracion: Configuracion | None = None
    conversacionId: m.Id | None = None  # the client may choose the id; otherwise one is made


def _participant(p: Participante) -> dict[str, Any]:
    spec: dict[str, Any] = {"userId": p.usuario, "role": p.rol}
    if p.permisos is not None:
        spec["permissions"] = {
            "canSend": p.permisos.puedeEnviar,
            "canDelete": p.permisos.puedeEliminar,
            "canModerate": p.permisos.puedeModerar,
        }
    return spec


async def test(_: Request) -> JSONResponse:
    """Unauthenticated smoke test: `{success: true, message, timestamp}`."""
    return JSONResponse({"success": True, "message": "API de mensajería funcionando", "timestamp": utcnow_iso()})


@documented(body=CrearConversacion)
async def crear_conversacion(request: Request) -> JSONResponse:
    """Create a conversation (the caller is always a participant); 201 `{success, conversacion}`."""
    principal = await caller(request)
    gw = gateway(request)
    body = await read_body(request, CrearConversacion, max_bytes=gw.settings.max_packet_bytes)
    users = {p.usuario for p in body.participantes} | {principal.user_id}
    if body.tipo == "individual" and len(users) != 2:
        raise RelayError(
            ErrorCode.VALIDATION_ERROR, "an individual conversation has exactly two participants", field="participantes"
        )
    config = body.configuracion or Configuracion()
    data: dict[str, Any] = {
        "conversationId": body.conversacionId or f"conv-{uuid.uuid4().hex}",
        "type": es.CONVERSATION_TYPE[body.tipo],
        "participants": [_participant(p) for p in body.participantes],
    }
    if config.nombrePersonalizado:
        data["subject"] = config.nombrePersonalizado
    if config.descripcion:
        data["description"] = config.descripcion
    conversation = await gw.bus.call(principal, m.CREATE_CONVERSATION, data)
    return JSONResponse({"success": True, "conversacion": es.conversacion(conversation)}, status_code=201)


async def listar_conversaciones(request: Request) -> JSONResponse:
    """The caller's conversations with their unread counts: `{success, conversaciones, total}`."""
    principal = await caller(request)
    result = await gateway(request).bus.call(principal, m.LIST_CONVERSATIONS, {"memberOnly": True})
    items = [es.conversacion(c, viewer=principal.user_id) for c in result["conversations"]]
    return JSONResponse({"success": True, "conversaciones": items, "total": len(items)})


async def obtener_conversacion(request: Request) -> JSONResponse:
    """One conversation the caller may read: `{success, conversacion}`."""
    principal = await caller(request)
    cid = request.path_params["conversacion_id"]
    conversation = await gateway(request).bus.call(principal, m.CHECK_ACCESS, {"conversationId": cid})
    return JSONResponse({"success": True, "conversacion": es.conversacion(conversation, viewer=principal.user_id)})


@documented(query=HistoryQuery)
async def mensajes(request: Request) -> JSONResponse:
    """A page of the conversation's messages in `seq` order: `{success, mensajes, hayMas, total}`."""
    page = await history_page(request, request.path_params["conversacion_id"])
    items = [es.mensaje(x) for x in page["messages"]]
    return JSONResponse({"success": True, "mensajes": items, "hayMas": page["hasMore"], "total": len(items)})


ROUTES = [
    Route("/api/mensajeria/test", test, methods=["GET"]),
    Route("/api/mensajeria/conversaciones", crear_conversacion, methods=["POST"]),
    Route("/api/mensajeria/conversaciones", listar_conversaciones, methods=["GET"]),
    Route("/api/mensajeria/conversaciones/{conversacion_id}", obtener_conversacion, methods=["GET"]),
    Route("/api/mensajeria/conversaciones/{conversacion_id}/mensajes", mensajes, methods=["GET"]),
]
