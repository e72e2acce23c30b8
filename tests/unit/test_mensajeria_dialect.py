"""seed-003 rendering and participant rules, without servers."""

from __future__ import annotations

from datetime import UTC, datetime

from relay_contracts import Envelope
from relay_contracts import messages as m
from relay_contracts import receipts as r
from relay_gateway.dialects import mensajeria as es
from relay_gateway.dialects import merge, render, support
from relay_message import domain

TABLE = merge(support.TABLE, es.TABLE)


def created(internal: bool = False, **extra) -> Envelope:
    data = {
        "messageId": "m1",
        "conversationId": "c1",
        "seq": 7,
        "senderId": "ana",
        "senderRoles": ["cliente"],
        "type": "image",
        "content": "mira",
        "isInternal": internal,
        "isFirstResponse": False,
        "clientMessageId": "k1",
        "replyTo": "m0",
        "createdAt": "2026-01-01T00:00:00.000Z",
        "priority": "high",
        "deliveryState": "sent",
        "reads": [],
        **extra,
    }
    return Envelope(type=m.MESSAGE_CREATED, tenant="acme", correlationId="c", data=data)


def test_a_message_renders_once_per_dialect_into_each_dialects_room():
    out = render(TABLE, created(attachment={"url": "u", "fileName": "f.png", "fileSize": 3, "mimeType": "image/png"}))
    assert [(d.room, d.event) for d in out] == [("chat:c1", "message:new"), ("chat:c1:mensajeria", "nuevo_mensaje")]
    mensaje = out[1].payload["mensaje"]
    assert out[1].payload["conversacionId"] == "c1" and mensaje["seq"] == 7
    assert (mensaje["tipo"], mensaje["prioridad"], mensaje["respuestaA"], mensaje["estado"]) == (
        "imagen",
        "alta",
        "m0",
        "enviado",
    )
    assert mensaje["contenido"] == {
        "texto": "mira",
        "tipo": "imagen",
        "metadatos": {},
        "archivo": {"nombre": "f.png", "url": "u", "tamano": 3, "tipo": "image/png"},
    }


def test_internal_notes_never_reach_a_mensajeria_room():
    assert [d.room for d in render(TABLE, created(internal=True))] == ["chat:c1:commercial"]


def test_mensaje_leido_names_the_reader_and_the_message():
    read = r.MessageRead(conversationId="c1", readerId="beto", messageIds=("m1",), all=False, readAt="t")
    env = Envelope(type=r.MESSAGE_READ, tenant="acme", correlationId="c", data=read.model_dump())
    (delivery,) = render(TABLE, env)
    assert (delivery.room, delivery.event) == ("chat:c1:mensajeria", "mensaje_leido")
    assert delivery.payload == {
        "conversacionId": "c1",
        "mensajeId": "m1",
        "mensajesIds": ["m1"],
        "todos": False,
        "leidoPor": "beto",
        "fechaLectura": "t",
    }


def test_participants_get_role_defaults_unless_the_creator_overrides_them():
    at = datetime.now(UTC)
    specs = [
        m.ParticipantSpec(userId="mod", role="Moderador"),
        m.ParticipantSpec(userId="mudo", role="cliente", permissions=m.Permissions(canSend=False)),
        m.ParticipantSpec(userId="ana", role="experto"),  # the creator naming their own role
    ]
    people = {p["userId"]: p for p in domain.build_participants("ana", "cliente", specs, at)}
    assert list(people) == ["ana", "mod", "mudo"]
    assert people["ana"]["role"] == "experto"
    assert people["mod"]["permissions"] == {"canSend": True, "canDelete": True, "canModerate": True}
    assert people["mudo"]["permissions"] == {"canSend": False, "canDelete": False, "canModerate": False}
    conversation = {"status": "IN_PROGRESS", "type": "group", "participants": list(people.values())}
    assert domain.can_send(conversation, "mod", ()) and not domain.can_send(conversation, "mudo", ())
    assert not domain.can_send(conversation, "stranger", ("experto",))


def test_reactions_render_as_seed_003_types_per_user():
    data = {
        "conversationId": "c1",
        "messageId": "m1",
        "seq": 3,
        "userId": "beto",
        "emoji": "❤️",
        "action": "add",
        "changed": True,
        "at": "t",
        "reactions": [
            {"emoji": "👍", "count": 2, "users": ["ana", "caro"]},
            {"emoji": "❤️", "count": 1, "users": ["beto"]},
        ],
    }
    env = Envelope(type=m.REACTION_CHANGED, tenant="acme", correlationId="c", data=data)
    mine = [d for d in render(TABLE, env) if d.room == "chat:c1:mensajeria"]
    assert [(d.event, d.payload["tipo"], d.payload["usuarioId"]) for d in mine] == [
        ("reaccion_agregada", "love", "beto")
    ]
    assert mine[0].payload["reacciones"] == [
        {"usuario": "ana", "tipo": "like"},
        {"usuario": "caro", "tipo": "like"},
        {"usuario": "beto", "tipo": "love"},
    ]
    removed = Envelope(type=m.REACTION_CHANGED, tenant="acme", correlationId="c", data={**data, "action": "remove"})
    assert [d.event for d in render(TABLE, removed) if d.room == "chat:c1:mensajeria"] == ["reaccion_eliminada"]
