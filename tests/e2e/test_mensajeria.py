"""seed-003 SERVITECH mensajería: its documented client flow against Relay, over both gateway replicas."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from relay_sdk import RelayClient, RelaySocket
from relay_sdk.client import RelayError

pytestmark = pytest.mark.e2e

SPEC_CODES = {
    "AUTH_REQUIRED",
    "TOKEN_EXPIRED",
    "PERMISSION_DENIED",
    "VALIDATION_ERROR",
    "NOT_FOUND",
    "CONFLICT",
    "RATE_LIMITED",
    "PAYLOAD_TOO_LARGE",
    "UNAVAILABLE",
    "INTERNAL",
}


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def seed_socket(url: str, user: str, token: str) -> RelaySocket:
    """seed-003's client: connect with no credentials, then `autenticar`."""
    sock = RelaySocket(url)
    await sock.connect()
    await sock.emit("autenticar", {"usuarioId": user, "token": token})
    assert (await sock.wait_for("autenticado"))["usuarioId"] == user
    return sock


async def create(client: RelayClient, participantes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {"participantes": participantes, "tipo": "grupal", **extra}
    created = await client.post("/api/mensajeria/conversaciones", body, expect=201)
    assert created["success"] is True
    return dict(created["conversacion"])


async def wait_disconnected(sock: RelaySocket, within: float) -> float:
    deadline = time.monotonic() + within
    while sock.sio.connected:
        assert time.monotonic() < deadline, "socket still connected"
        await asyncio.sleep(0.05)
    return time.monotonic()


async def test_seed_client_flow_across_replicas(client_factory, mint, gateways):
    ana, beto = uid("ana"), uid("beto")
    rest = client_factory(mint(ana, "cliente"), 0)
    conv = await create(rest, [{"usuario": beto, "rol": "experto"}], configuracion={"nombrePersonalizado": "Soporte"})
    cid = conv["conversacionId"]
    assert {p["usuario"]: p["rol"] for p in conv["participantes"]} == {ana: "cliente", beto: "experto"}

    a = await seed_socket(gateways[0], ana, mint(ana, "cliente"))
    b = await seed_socket(gateways[1], beto, mint(beto, "experto"))
    try:
        await a.emit("unirse_conversacion", {"conversacionId": cid})
        assert (await a.wait_for("unido_conversacion"))["participantes_conectados"] == [ana]
        await b.emit("unirse_conversacion", {"conversacionId": cid})
        joined = await b.wait_for("unido_conversacion")
        # ana's socket lives on the other replica
        assert joined["conversacionId"] == cid and joined["participantes_conectados"] == sorted([ana, beto])

        await a.emit("enviar_mensaje", {"conversacionId": cid, "contenido": {"texto": "Hola mundo!"}, "tipo": "texto"})
        sent = await a.wait_for("mensaje_enviado")
        assert sent["estado"] == "enviado" and sent["seq"] == 1
        for sock in (a, b):
            got = await sock.wait_for("nuevo_mensaje")
            assert got["conversacionId"] == cid
            assert got["mensaje"]["contenido"]["texto"] == "Hola mundo!"
            assert got["mensaje"]["_id"] == sent["mensajeId"] and got["mensaje"]["remitente"] == ana

        reply = {
            "conversacionId": cid,
            "contenido": {"texto": "¿En qué te ayudo?", "metadatos": {"origen": "web"}},
            "tipo": "texto",
            "respuestaA": sent["mensajeId"],
            "prioridad": "urgente",
        }
        ack = await b.call("enviar_mensaje", reply)
        assert ack["success"] is True and ack["seq"] == 2
        second = (await a.wait_for("nuevo_mensaje", count=2))[1]["mensaje"]
        assert second["respuestaA"] == sent["mensajeId"] and second["prioridad"] == "urgente"
        assert second["contenido"]["metadatos"] == {"origen": "web"} and second["remitente"] == beto

        archivo = {"nombre": "foto.png", "url": "https://cdn.example/foto.png", "tamano": 2048, "tipo": "image/png"}
        imagen = {"conversacionId": cid, "contenido": {"archivo": archivo}, "tipo": "imagen"}
        ack = await a.call("enviar_mensaje", imagen)
        assert ack["success"] is True
        third = (await b.wait_for("nuevo_mensaje", count=3))[2]["mensaje"]
        assert third["tipo"] == "imagen" and third["contenido"]["archivo"] == archivo

        # typing reaches the other replica, never the typist, and expires without a refresh
        await b.emit("escribiendo", {"conversacionId": cid, "escribiendo": True})
        typing = await a.wait_for("usuario_escribiendo")
        assert typing == {**typing, "usuarioId": beto, "escribiendo": True, "conversacionId": cid}
        stopped = await a.wait_for("usuario_escribiendo", lambda e: e["escribiendo"] is False, timeout=8)
        assert stopped["usuarioId"] == beto
        assert b.received("usuario_escribiendo") == []

        await a.emit("ping")
        assert "timestamp" in await a.wait_for("pong")

        await asyncio.sleep(0.5)
        assert [len(s.received("nuevo_mensaje")) for s in (a, b)] == [3, 3]
        assert len(a.received("mensaje_enviado")) == 2 and len(b.received("mensaje_enviado")) == 1

        history = await rest.get(f"/api/mensajeria/conversaciones/{cid}/mensajes")
        assert [m["seq"] for m in history["mensajes"]] == [1, 2, 3]

        # leaving stops delivery to that socket only
        assert (await b.call("salir_conversacion", {"conversacionId": cid}))["success"] is True
        await a.call("enviar_mensaje", {"conversacionId": cid, "contenido": {"texto": "¿sigues ahí?"}})
        await a.wait_for("nuevo_mensaje", count=4)
        await asyncio.sleep(0.5)
        assert len(b.received("nuevo_mensaje")) == 3
        await b.emit("unirse_conversacion", {"conversacionId": cid})
        rejoined = await b.wait_for("unido_conversacion", count=2)
        assert rejoined[1]["participantes_conectados"] == sorted([ana, beto])
    finally:
        await a.close()
        await b.close()


async def test_anonymous_socket_may_only_authenticate_ping_and_health(gateways):
    sock = RelaySocket(gateways[1])
    async with sock:
        assert (await sock.wait_for("connected"))["user"] is None
        for event, data in [
            ("unirse_conversacion", {"conversacionId": "c1"}),
            ("enviar_mensaje", {"conversacionId": "c1", "contenido": {"texto": "hola"}}),
            ("chat:join", {"chatId": "c1"}),
            ("no-such-event", {"x": 1}),
        ]:
            ack = await sock.call(event, data)
            assert ack["success"] is False and ack["error"]["code"] == "AUTH_REQUIRED"
        errors = await sock.wait_for("error", count=4)
        assert {e["code"] for e in errors} == {"AUTH_REQUIRED"}
        assert "timestamp" in (await sock.call("ping"))
        assert (await sock.call("health-check"))["status"] == "ok"
        assert (await sock.call("test", {"message": "eco"}))["message"] == "eco"


async def test_unauthenticated_socket_is_disconnected_after_grace_period(gateways, mint):
    lazy = RelaySocket(gateways[0])
    prompt = RelaySocket(gateways[1])
    await lazy.connect()
    await prompt.connect()
    started = time.monotonic()
    try:
        user = uid("pronto")
        await prompt.emit("autenticar", {"usuarioId": user, "token": mint(user, "cliente")})
        await prompt.wait_for("autenticado")
        gone = await wait_disconnected(lazy, within=6)  # AUTH_GRACE_SECONDS=2 in the e2e stack
        assert gone - started >= 1.5
        assert any(e["code"] == "AUTH_REQUIRED" for e in lazy.received("error"))
        await asyncio.sleep(max(0.0, started + 3 - time.monotonic()))
        assert prompt.sio.connected and "timestamp" in await prompt.call("ping")
    finally:
        await lazy.close()
        await prompt.close()


async def test_autenticar_refuses_mismatched_or_bad_tokens_and_handshake_still_refuses_bad(gateways, mint):
    user, other = uid("u"), uid("otro")
    async with RelaySocket(gateways[0]) as sock:
        cases = [
            {"usuarioId": other, "token": mint(user, "cliente")},  # someone else's token
            {"usuarioId": user, "token": "not-a-jwt"},
            {"usuarioId": user, "token": mint(user, "cliente", ttl=-60)},
            {"usuarioId": user},
        ]
        codes = [(await sock.call("autenticar", body))["error"]["code"] for body in cases]
        assert codes == ["AUTH_REQUIRED", "AUTH_REQUIRED", "TOKEN_EXPIRED", "VALIDATION_ERROR"]
        assert sock.received("autenticado") == []
        # still anonymous
        ack = await sock.call("unirse_conversacion", {"conversacionId": "x"})
        assert ack["error"]["code"] == "AUTH_REQUIRED"
        assert (await sock.call("autenticar", {"usuarioId": user, "token": mint(user, "cliente")}))["success"]
        # authenticated: one user per socket
        ack = await sock.call("autenticar", {"usuarioId": other, "token": mint(other, "cliente")})
        assert ack["error"]["code"] == "PERMISSION_DENIED"
    bad = RelaySocket(gateways[1], auth={"token": "garbage"})
    with pytest.raises(Exception, match=r"(?i)invalid|connect"):
        await bad.connect(timeout=5)


async def test_participant_without_puede_enviar_is_refused_and_nothing_is_stored(client_factory, mint, gateways):
    owner, mudo, mod = uid("duena"), uid("mudo"), uid("mod")
    rest = client_factory(mint(owner, "admin"), 0)
    conv = await create(
        rest,
        [
            {"usuario": mudo, "rol": "cliente", "permisos": {"puedeEnviar": False}},
            {"usuario": mod, "rol": "MODERADOR"},
        ],
    )
    perms = {p["usuario"]: p["permisos"] for p in conv["participantes"]}
    assert perms[mudo] == {"puedeEnviar": False, "puedeEliminar": False, "puedeModerar": False}
    assert perms[mod] == {"puedeEnviar": True, "puedeEliminar": True, "puedeModerar": True}
    cid = conv["conversacionId"]
    sock = await seed_socket(gateways[1], mudo, mint(mudo, "cliente"))
    try:
        await sock.call("unirse_conversacion", {"conversacionId": cid})
        ack = await sock.call("enviar_mensaje", {"conversacionId": cid, "contenido": {"texto": "¿puedo?"}})
        assert ack["success"] is False and ack["error"]["code"] == "PERMISSION_DENIED"
        assert (await sock.wait_for("error"))["code"] == "PERMISSION_DENIED"
    finally:
        await sock.close()
    assert (await rest.get(f"/api/mensajeria/conversaciones/{cid}/mensajes"))["mensajes"] == []
    # a stranger can neither join nor read
    stranger = uid("extrano")
    outsider = await seed_socket(gateways[0], stranger, mint(stranger, "cliente"))
    try:
        ack = await outsider.call("unirse_conversacion", {"conversacionId": cid})
        assert ack["error"]["code"] == "PERMISSION_DENIED"
    finally:
        await outsider.close()


async def test_create_conversation_rejects_bad_bodies(client_factory, mint):
    rest = client_factory(mint(uid("v"), "cliente"), 0)
    for body, field in [
        ({"participantes": []}, "participantes"),
        ({"participantes": [{"usuario": "x", "rol": "emperador"}]}, "participantes.0.rol"),
        ({"participantes": [{"usuario": "x"}], "tipo": "secreta"}, "tipo"),
        ({"participantes": [{"usuario": "a"}, {"usuario": "b"}], "tipo": "individual"}, "participantes"),
        ({"participantes": [{"usuario": "bad id!"}]}, "participantes.0.usuario"),
    ]:
        with pytest.raises(RelayError) as refused:
            await rest.post("/api/mensajeria/conversaciones", body)
        assert refused.value.status == 400 and refused.value.body["error"]["field"] == field
    assert (await rest.get("/api/mensajeria/conversaciones"))["conversaciones"] == []
    assert (await rest.get("/api/mensajeria/test"))["success"] is True


async def test_marcar_leido_one_then_all_drops_unread_counts(client_factory, mint, gateways):
    ana, beto = uid("ana"), uid("beto")
    rest_a = client_factory(mint(ana, "cliente"), 0)
    rest_b = client_factory(mint(beto, "experto"), 1)
    cid = (await create(rest_a, [{"usuario": beto, "rol": "experto"}], tipo="individual"))["conversacionId"]
    a = await seed_socket(gateways[0], ana, mint(ana, "cliente"))
    b = await seed_socket(gateways[1], beto, mint(beto, "experto"))
    try:
        for sock in (a, b):
            await sock.call("unirse_conversacion", {"conversacionId": cid})
        ids = []
        for i in range(3):
            ack = await a.call("enviar_mensaje", {"conversacionId": cid, "contenido": {"texto": f"m{i}"}})
            ids.append(ack["mensajeId"])

        async def unread(client: RelayClient) -> int:
            listed = await client.get("/api/mensajeria/conversaciones")
            return int(next(c for c in listed["conversaciones"] if c["id"] == cid)["noLeidos"])

        assert (await unread(rest_b), await unread(rest_a)) == (3, 0)

        ack = await b.call("marcar_leido", {"conversacionId": cid, "mensajeId": ids[0]})
        assert ack["success"] is True and ack["noLeidos"] == 2 and ack["mensajesIds"] == [ids[0]]
        read = await a.wait_for("mensaje_leido")
        assert read["leidoPor"] == beto and read["mensajeId"] == ids[0] and read["conversacionId"] == cid
        assert await unread(rest_b) == 2

        ack = await b.call("marcar_leido", {"conversacionId": cid})
        assert ack["noLeidos"] == 0 and ack["mensajesIds"] == ids[1:]
        read_all = await a.wait_for("mensaje_leido", count=2)
        assert read_all[1]["todos"] is True and read_all[1]["mensajesIds"] == ids[1:]
        assert await unread(rest_b) == 0

        # marking again changes nothing and announces nothing
        assert (await b.call("marcar_leido", {"conversacionId": cid}))["mensajesIds"] == []
        # the sender cannot "read" their own message for the other side
        assert (await a.call("marcar_leido", {"conversacionId": cid, "mensajeId": ids[0]}))["mensajesIds"] == []
        missing = await b.call("marcar_leido", {"conversacionId": cid, "mensajeId": "no-such-message"})
        assert missing["error"]["code"] == "NOT_FOUND"
        await asyncio.sleep(0.5)
        assert len(a.received("mensaje_leido")) == 2

        history = await rest_a.get(f"/api/mensajeria/conversaciones/{cid}/mensajes")
        assert all([r["usuario"] for r in m["lecturas"]] == [beto] for m in history["mensajes"])
        assert {m["estado"] for m in history["mensajes"]} == {"leido"}
    finally:
        await a.close()
        await b.close()


async def test_mixed_dialects_each_get_their_own_event_exactly_once(client_factory, mint, gateways):
    """A seed-001 visitor (chat:join + message:new) and a seed-003 experto in the same conversation."""
    visitor_id, experto = uid("visita"), uid("experto")
    visitor = client_factory(mint(visitor_id, "visitor"), 0)
    chat = await visitor.post("/v2/chats", {"subject": "mi pedido"}, expect=201)
    cid = chat["chatId"]
    support = visitor.socket()
    await support.connect()
    es = await seed_socket(gateways[1], experto, mint(experto, "experto"))
    try:
        assert (await support.call("chat:join", {"chatId": cid}))["success"] is True
        assert (await es.call("unirse_conversacion", {"conversacionId": cid}))["success"] is True
        await visitor.post("/v2/messages", {"chatId": cid, "content": "hola desde 001"}, expect=201)
        ack = await es.call("enviar_mensaje", {"conversacionId": cid, "contenido": {"texto": "hola desde 003"}})
        assert ack["success"] is True
        got_001 = await support.wait_for("message:new", count=2)
        got_003 = await es.wait_for("nuevo_mensaje", count=2)
        assert [m["content"] for m in got_001] == ["hola desde 001", "hola desde 003"]
        assert [m["mensaje"]["contenido"]["texto"] for m in got_003] == ["hola desde 001", "hola desde 003"]
        assert [m["seq"] for m in got_001] == [m["seq"] for m in got_003] == [1, 2]
        await asyncio.sleep(0.5)
        assert len(support.received("message:new")) == 2 and support.received("nuevo_mensaje") == []
        assert len(es.received("nuevo_mensaje")) == 2 and es.received("message:new") == []

        # one socket in both dialects' rooms gets each dialect's event once, and leaving one keeps the other
        assert (await es.call("chat:join", {"chatId": cid}))["success"] is True
        await visitor.post("/v2/messages", {"chatId": cid, "content": "a los dos"}, expect=201)
        assert (await es.wait_for("message:new"))["content"] == "a los dos"
        assert (await es.wait_for("nuevo_mensaje", count=3))[2]["mensaje"]["contenido"]["texto"] == "a los dos"
        assert (await es.call("chat:leave", {"chatId": cid}))["success"] is True
        await visitor.post("/v2/messages", {"chatId": cid, "content": "solo 003"}, expect=201)
        assert (await es.wait_for("nuevo_mensaje", count=4))[3]["mensaje"]["contenido"]["texto"] == "solo 003"
        await asyncio.sleep(0.5)
        assert len(es.received("message:new")) == 1 and len(es.received("nuevo_mensaje")) == 4
    finally:
        await support.close()
        await es.close()


async def test_tenants_sharing_a_conversation_id_never_see_each_other(client_factory, mint, gateways):
    cid = uid("conv_test")
    acme_user, globex_user = uid("acme"), uid("globex")
    acme = client_factory(mint(acme_user, "cliente", tenant="acme"), 0)
    globex = client_factory(mint(globex_user, "cliente", tenant="globex"), 1)
    await create(acme, [{"usuario": uid("p")}], conversacionId=cid)
    await create(globex, [{"usuario": uid("q")}], conversacionId=cid)
    with pytest.raises(RelayError) as taken:
        await create(acme, [{"usuario": uid("p")}], conversacionId=cid)
    assert taken.value.status == 409
    a = await seed_socket(gateways[0], acme_user, mint(acme_user, "cliente", tenant="acme"))
    g = await seed_socket(gateways[0], globex_user, mint(globex_user, "cliente", tenant="globex"))
    try:
        assert (await a.call("unirse_conversacion", {"conversacionId": cid}))["participantes_conectados"] == [acme_user]
        assert (await g.call("unirse_conversacion", {"conversacionId": cid}))["participantes_conectados"] == [
            globex_user
        ]
        await a.call("enviar_mensaje", {"conversacionId": cid, "contenido": {"texto": "solo acme"}})
        await g.call("escribiendo", {"conversacionId": cid, "escribiendo": True})
        assert (await a.wait_for("nuevo_mensaje"))["mensaje"]["contenido"]["texto"] == "solo acme"
        await asyncio.sleep(0.5)
        assert g.received("nuevo_mensaje") == [] and a.received("usuario_escribiendo") == []
        assert (await globex.get(f"/api/mensajeria/conversaciones/{cid}/mensajes"))["mensajes"] == []
    finally:
        await a.close()
        await g.close()


async def test_agregar_reaccion_reaches_the_conversation_once_and_only_readers_react(client_factory, mint, gateways):
    ana, beto, zoe = uid("ana"), uid("beto"), uid("zoe")
    rest = client_factory(mint(ana, "cliente"), 0)
    cid = (await create(rest, [{"usuario": beto, "rol": "experto"}]))["conversacionId"]
    a = await seed_socket(gateways[0], ana, mint(ana, "cliente"))
    b = await seed_socket(gateways[1], beto, mint(beto, "experto"))
    z = await seed_socket(gateways[1], zoe, mint(zoe, "cliente"))
    try:
        for sock in (a, b):
            await sock.call("unirse_conversacion", {"conversacionId": cid})
        sent = await a.call("enviar_mensaje", {"conversacionId": cid, "contenido": {"texto": "¿te gusta?"}})
        # the seed's payload names only the message
        ack = await b.call("agregar_reaccion", {"mensajeId": sent["mensajeId"], "tipo": "love"})
        assert ack["success"] is True and ack["conversacionId"] == cid
        assert ack["reacciones"] == [{"usuario": beto, "tipo": "love"}]
        got = await a.wait_for("reaccion_agregada")
        assert got["mensajeId"] == sent["mensajeId"] and got["usuarioId"] == beto and got["tipo"] == "love"
        assert got["reacciones"] == [{"usuario": beto, "tipo": "love"}]
        await a.call("agregar_reaccion", {"mensajeId": sent["mensajeId"], "tipo": "like", "conversacionId": cid})
        both = await b.wait_for("reaccion_agregada", count=2)
        assert both[1]["reacciones"] == [{"usuario": beto, "tipo": "love"}, {"usuario": ana, "tipo": "like"}]
        # the same reaction again changes nothing and announces nothing
        assert (await b.call("agregar_reaccion", {"mensajeId": sent["mensajeId"], "tipo": "love"}))["success"]
        for bad in ({"mensajeId": sent["mensajeId"]}, {"mensajeId": sent["mensajeId"], "tipo": "angry"}):
            assert (await b.call("agregar_reaccion", bad))["error"]["code"] == "VALIDATION_ERROR"
        # a stranger can neither react nor learn the message exists
        denied = await z.call("agregar_reaccion", {"mensajeId": sent["mensajeId"], "tipo": "sad"})
        assert denied["error"]["code"] == "NOT_FOUND"
        denied = await z.call(
            "agregar_reaccion", {"mensajeId": sent["mensajeId"], "tipo": "sad", "conversacionId": cid}
        )
        assert denied["error"]["code"] in {"PERMISSION_DENIED", "NOT_FOUND"}
        await asyncio.sleep(0.5)
        assert len(a.received("reaccion_agregada")) == 2 and len(b.received("reaccion_agregada")) == 2
        history = await rest.get(f"/api/mensajeria/conversaciones/{cid}/mensajes")
        assert history["mensajes"][0]["reacciones"] == [
            {"usuario": beto, "tipo": "love"},
            {"usuario": ana, "tipo": "like"},
        ]
    finally:
        for sock in (a, b, z):
            await sock.close()


async def test_statistics_count_joined_conversations_until_everyone_leaves(client_factory, mint, gateways):
    tenant = uid("stats")
    ana, beto = uid("ana"), uid("beto")
    rest = client_factory(mint(ana, "cliente", tenant=tenant), 0)
    cid = (await create(rest, [{"usuario": beto, "rol": "experto"}]))["conversacionId"]

    async def stats() -> dict[str, Any]:
        return dict(await rest.get("/api/mensajeria/estadisticas"))

    async def eventually(active: int) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while (current := await stats())["conversacionesActivas"] != active:
            assert time.monotonic() < deadline, current
            await asyncio.sleep(0.1)
        return current

    assert (await stats())["conversacionesActivas"] == 0
    a = await seed_socket(gateways[0], ana, mint(ana, "cliente", tenant=tenant))
    b = await seed_socket(gateways[1], beto, mint(beto, "experto", tenant=tenant))
    try:
        for sock in (a, b):
            assert (await sock.call("unirse_conversacion", {"conversacionId": cid}))["success"] is True
        current = await eventually(1)  # two sockets on two replicas, one conversation
        assert current["usuariosConectados"] == 2
        assert (await a.call("salir_conversacion", {"conversacionId": cid}))["success"] is True
        await asyncio.sleep(0.5)
        assert (await stats())["conversacionesActivas"] == 1  # beto is still in it
    finally:
        await a.close()
        await b.close()  # a disconnect leaves the conversation too
    await eventually(0)
