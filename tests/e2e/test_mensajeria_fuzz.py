"""Malformed payloads to every seed-003 event change nothing, and the connection survives them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_sdk import RelaySocket

from tests.e2e.test_mensajeria import SPEC_CODES, create, seed_socket

pytestmark = pytest.mark.e2e

EVENTS = {
    "autenticar": ["usuarioId", "token"],
    "unirse_conversacion": ["conversacionId"],
    "salir_conversacion": ["conversacionId"],
    "enviar_mensaje": ["conversacionId", "contenido", "tipo", "respuestaA", "prioridad", "clientMessageId"],
    "marcar_leido": ["conversacionId", "mensajeId"],
    "escribiendo": ["conversacionId", "escribiendo"],
    "agregar_reaccion": ["mensajeId", "tipo", "conversacionId"],
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.text(alphabet="$.{}[]\\\"'<>%#\x00", max_size=10),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner))


def payloads(fields: list[str], target: str) -> st.SearchStrategy[Any]:
    # near misses: the right keys with wrong values, the real conversation id with garbage beside it
    near = st.fixed_dictionaries({}, optional={f: values for f in fields})
    aimed = st.fixed_dictionaries(
        {"conversacionId": st.just(target)},
        optional={
            "contenido": values | st.fixed_dictionaries({}, optional={"texto": values, "archivo": values}),
            "mensajeId": values,
            "escribiendo": values,
            "tipo": values,
            "prioridad": values,
            "respuestaA": values,
            "correlationId": values,
        },
    ).filter(lambda p: not _valid_send(p))
    return st.one_of(values, near, aimed)


def _valid_send(p: dict[str, Any]) -> bool:
    # a well-formed message would be stored, which is not what this test is about
    contenido = p.get("contenido")
    return isinstance(contenido, dict) and isinstance(contenido.get("texto"), str) and contenido["texto"].strip() != ""


def collect(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    found: list[Any] = []

    @settings(max_examples=n, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(example: Any) -> None:
        found.append(example)

    run()
    return found


async def test_malformed_payloads_change_nothing_and_connection_survives(client_factory, mint, gateways):
    owner, other = f"fz-{uuid.uuid4().hex[:6]}", f"fz2-{uuid.uuid4().hex[:6]}"
    rest = client_factory(mint(owner, "cliente"), 0)
    cid = (await create(rest, [{"usuario": other, "rol": "experto"}]))["conversacionId"]
    seeded = await rest.get(f"/api/mensajeria/conversaciones/{cid}")
    sock = await seed_socket(gateways[1], owner, mint(owner, "cliente"))
    watcher = RelaySocket(gateways[0], auth={"token": mint(other, "experto")})
    await watcher.connect()
    try:
        await sock.call("unirse_conversacion", {"conversacionId": cid})
        await watcher.call("unirse_conversacion", {"conversacionId": cid})
        for event, fields in EVENTS.items():
            # 25 a event stays inside the default per-user limits (30 joins / messages per 10 s)
            for payload in collect(payloads(fields, cid), 25):
                ack = await sock.call(event, payload, timeout=10)
                assert isinstance(ack, dict), (event, payload, ack)
                if ack.get("success") is not True:
                    assert ack["error"]["code"] in SPEC_CODES - {"INTERNAL"}, (event, payload, ack)
            assert sock.sio.connected, event
            # still authenticated as the owner, still in the conversation
            assert "timestamp" in await sock.call("ping")
        assert (await sock.call("unirse_conversacion", {"conversacionId": cid}))["success"] is True
        assert (await rest.get(f"/api/mensajeria/conversaciones/{cid}/mensajes"))["mensajes"] == []
        after = await rest.get(f"/api/mensajeria/conversaciones/{cid}")
        assert after["conversacion"]["participantes"] == seeded["conversacion"]["participantes"]
        for event in ("nuevo_mensaje", "mensaje_leido", "reaccion_agregada"):
            assert watcher.received(event) == [], event
    finally:
        await sock.close()
        await watcher.close()
