"""Tenant probes: a fully privileged user of another tenant names acme's ids on every REST route and
every socket event; nothing of acme's comes back, nothing of acme's changes, no acme socket hears it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.security.surface import fill, rest_endpoints, socket_events

pytestmark = pytest.mark.e2e

SECRET = f"ACME-SECRET-{uuid.uuid4().hex[:8]}"
PROBE = f"GLOBEX-PROBE-{uuid.uuid4().hex[:8]}"  # what the attacker writes: no acme socket may hear it
# routes that name no tenant's data: pages, sign-in, and the gateway's own probes
NOT_TENANT_DATA = ("/app/", "/api/v1/auth/", "/v2/visitor/session", "/api/mensajeria/test")
# leaving something one never joined is idempotent: it succeeds and shows nothing
IDEMPOTENT_EVENTS = {"chat:leave", "leave_channel", "salir_conversacion", "leave-room", "typing:stop"}
SERVER_ONLY = {"autenticar", "auth:refresh", "health-check", "test", "ping"}


async def _acme_counts(storage: Any) -> dict[str, int]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(storage.url, serverSelectionTimeoutMS=5000)
    try:
        db = client[storage.database]
        names = sorted(await db.list_collection_names())
        return {name: await db[name].count_documents({"tenant": "acme"}) for name in names}
    finally:
        await client.close()


async def _acme_world(client_factory, mint) -> dict[str, Any]:
    visitor = client_factory(mint("v-acme-probe", "visitor"), 0)
    agent = client_factory(mint("a-acme-probe", "agent"), 0)
    waiter = client_factory(mint("w-acme-probe", "waiter", tenant="acme", claim="restaurantId"), 0)
    chat_id = (await visitor.open_chat(SECRET))["chatId"]
    message = await visitor.send(chat_id, SECRET)
    await agent.send(chat_id, SECRET, isInternal=True)
    upload = await visitor.upload(chat_id, "secret.txt", SECRET.encode(), "text/plain")
    channel = await agent.post("/v2/channels", {"name": SECRET, "members": ["v-acme-probe"]})
    conversation = await agent.post(
        "/api/mensajeria/conversaciones",
        {"participantes": [{"usuario": "v-acme-probe"}], "tipo": "grupal", "configuracion": {"descripcion": SECRET}},
    )
    order = await waiter.post("/api/v1/orders", {"tableSessionId": SECRET}, expect=201)
    item = await waiter.post(
        f"/api/v1/orders/{order['orderId']}/items", {"name": SECRET, "qty": 1, "unitPrice": "1.00"}, expect=201
    )
    return {
        "visitor": visitor,
        "agent": agent,
        "ids": {
            "chat_id": chat_id,
            "channel_id": channel["channelId"],
            "conversacion_id": conversation["conversacion"]["id"],
            "order_id": order["orderId"],
            "item_id": item.get("itemId") or item.get("id") or "x",
            "file_id": upload.get("fileId") or upload.get("id") or "x",
            "message_id": message["messageId"],
        },
    }


def _body(path: str, ids: dict[str, str]) -> dict[str, Any]:
    bodies: dict[str, dict[str, Any]] = {
        "/v2/messages": {"chatId": ids["chat_id"], "content": PROBE},
        # creates name no acme id: ids are per tenant, so the attacker would only make its own
        "/api/mensajeria/conversaciones": {"participantes": [{"usuario": "v-acme-probe"}], "tipo": "grupal"},
        "/v2/channels": {"name": PROBE, "members": ["v-acme-probe"]},
        "/api/v1/channels": {"name": PROBE},
        "/api/v1/orders": {"tableSessionId": PROBE},
        "/websocket/send-notification": {"userId": "v-acme-probe", "message": PROBE},
        "/websocket/broadcast": {"message": PROBE},
        "/websocket/send-to-role": {"role": "visitor", "message": PROBE},
    }
    if path.endswith("/members"):
        return {"members": ["g-probe"]}
    if path.endswith("/items"):
        return {"name": PROBE, "qty": 1, "unitPrice": "1.00"}
    if path.endswith("/status"):
        return {"status": "READY"}
    return bodies.get(path, {})


async def test_another_tenant_sees_and_changes_nothing_of_acme(client_factory, mint, storage):
    acme = await _acme_world(client_factory, mint)
    ids = acme["ids"]
    attacker = client_factory(
        mint("g-probe", "admin", "agent", "waiter", "manager", "kitchen", tenant="globex", claim="restaurantId"), 1
    )
    async with acme["visitor"].socket() as heard_v, acme["agent"].socket() as heard_a:
        await heard_v.call("chat:join", {"chatId": ids["chat_id"]})
        await heard_a.call("chat:join", {"chatId": ids["chat_id"]})
        before = await _acme_counts(storage)

        for endpoint in rest_endpoints():
            if endpoint.path.startswith(NOT_TENANT_DATA) or endpoint.path == "/":
                continue
            url = fill(endpoint.path, ids)
            if endpoint.path == "/v2/files/upload":
                response = await attacker.http.post(
                    url,
                    data={"chatId": ids["chat_id"]},
                    files={"file": ("p.txt", PROBE.encode(), "text/plain")},
                    headers=attacker._headers(),
                )
            elif endpoint.method == "GET":
                response = await attacker.http.get(url, headers=attacker._headers())
            else:
                response = await attacker.http.request(
                    endpoint.method, url, json=_body(endpoint.path, ids), headers=attacker._headers()
                )
            assert SECRET not in response.text, (endpoint, response.text[:300])
            assert response.status_code < 500, (endpoint, response.text[:300])
            if "{" in endpoint.path or endpoint.path == "/v2/messages":
                assert response.status_code in (400, 403, 404), (endpoint, response.status_code, response.text[:300])

        async with attacker.socket() as sock, attacker.socket("/chat") as chat_sock:
            values = {
                "chatId": ids["chat_id"],
                "channelId": ids["channel_id"],
                "conversacionId": ids["conversacion_id"],
                "messageId": ids["message_id"],
                "mensajeId": ids["message_id"],
                "threadId": ids["message_id"],
                "parentMessageId": ids["message_id"],
                "text": PROBE,
                "contenido": PROBE,
                "message": PROBE,
                "emoji": "👍",
                "tipo": "like",
                "room": ids["chat_id"],
                "to": "v-acme-probe",
                "status": "away",
            }
            for registration in socket_events():
                if registration.event in SERVER_ONLY or registration.model is None:
                    continue
                fields = registration.model.model_fields
                payload = {name: values[name] for name in fields if name in values}
                target = chat_sock if registration.namespace == "/chat" else sock
                ack = await target.call(registration.event, payload)
                assert SECRET not in str(ack), (registration.event, ack)
                names_acme = any(n in payload for n in ("chatId", "channelId", "conversacionId", "mensajeId"))
                if names_acme and registration.event not in IDEMPOTENT_EVENTS:
                    assert ack["success"] is False, (registration.event, ack)
                    assert ack["error"]["code"] in ("NOT_FOUND", "PERMISSION_DENIED", "VALIDATION_ERROR"), ack
            for event, _ in sock.sequence + chat_sock.sequence:
                assert SECRET not in str(_), event

        assert await _acme_counts(storage) == before
        for heard in (heard_v, heard_a):
            assert not [e for e in heard.sequence if PROBE in str(e[1])], heard.sequence
