"""How presence transitions and relay.emit envelopes render, and which free-room names pass."""

from __future__ import annotations

import pytest
from relay_contracts import Envelope, RelayError
from relay_contracts import presence as p
from relay_gateway.dialects import render
from relay_gateway.dialects.presence import TABLE, user_presence_payload
from relay_gateway.sockets.users import check_room_name


def changed(previous: str, status: str, roles: tuple[str, ...] = ("agent",)) -> Envelope:
    data = {
        "userId": "ana",
        "user": {"userId": "ana", "username": "Ana", "roles": list(roles)},
        "status": status,
        "previous": previous,
        "online": status != "offline",
        "connectedSince": None,
        "lastSeen": "2026-01-01T00:00:00.000Z",
        "activeUsersCount": 3,
        "timestamp": "2026-01-01T00:00:01.000Z",
    }
    return Envelope(type=p.CHANGED, tenant="acme", correlationId="c", data=data)


def wire(envelope: Envelope) -> list[tuple[str, str, str]]:
    return [(d.namespace, d.room, d.event) for d in render(TABLE, envelope)]


USERS = ("presence:users", "presence:users:of:ana")
MENSAJERIA = ("presence:mensajeria", "presence:mensajeria:of:ana")


def test_coming_online_renders_each_dialect_once_to_the_sockets_that_speak_it_and_may_see_it():
    assert wire(changed("offline", "online")) == [
        ("/", USERS, "user-connected"),
        ("/", MENSAJERIA, "usuario_conectado"),
        ("/", MENSAJERIA, "estado_usuario_cambiado"),
    ]
    first = render(TABLE, changed("offline", "online"))[0]
    assert first.payload == {
        "user": {"userId": "ana", "username": "Ana", "roles": ["agent"]},
        "timestamp": first.payload["timestamp"],
        "activeUsersCount": 3,
    }


def test_going_away_only_changes_the_state_and_offline_says_goodbye():
    assert wire(changed("online", "away")) == [
        ("/", MENSAJERIA, "estado_usuario_cambiado"),
    ]
    assert [e for _, _, e in wire(changed("away", "offline"))] == [
        "user-disconnected",
        "usuario_desconectado",
        "estado_usuario_cambiado",
    ]
    estado = render(TABLE, changed("online", "away"))[0].payload
    assert estado["conectado"] is True and estado["estado"] == "away"


def test_a_visitors_transition_reaches_only_the_sockets_that_see_the_whole_tenant():
    assert {d.room for d in render(TABLE, changed("offline", "online", ("Visitor",)))} == {
        ("presence:users",),
        ("presence:mensajeria",),
    }


def test_seed_000_user_presence_payload():
    assert user_presence_payload(changed("offline", "online").data) == {
        "userId": "ana",
        "status": "online",
        "timestamp": changed("offline", "online").data["timestamp"],
    }


@pytest.mark.parametrize(
    ("scope", "target", "room"),
    [
        ("user", "u1", "user:u1"),
        ("role", "kitchen", "role:kitchen"),
        ("room", "restaurant:r1", "restaurant:r1"),
        ("tenant", "_", "tenant:all"),
        ("all", "_", "everyone"),
    ],
)
def test_emit_targets_map_to_rooms(scope, target, room):
    body = {"scope": scope, "target": target, "event": "ping-all", "payload": {"x": 1}}
    (d,) = render(TABLE, Envelope(type=p.EMIT, tenant="acme", correlationId="c", data=body))
    assert (d.room, d.event, d.payload) == (room, "ping-all", {"x": 1})


@pytest.mark.parametrize("name", ["general", "Sala 1", "team-a.b_c", "9lives"])
def test_free_room_names_that_pass(name):
    assert check_room_name(name) == name


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("chat:1", "PERMISSION_DENIED"),
        ("CHANNEL:x", "PERMISSION_DENIED"),
        ("tenant:all", "PERMISSION_DENIED"),
        ("room:general", "VALIDATION_ERROR"),
        (" leading", "VALIDATION_ERROR"),
        ("a|b", "VALIDATION_ERROR"),
        ("x" * 65, "VALIDATION_ERROR"),
    ],
)
def test_free_room_names_refused(name, code):
    with pytest.raises(RelayError) as refused:
        check_room_name(name)
    assert refused.value.code == code and refused.value.field == "room"
