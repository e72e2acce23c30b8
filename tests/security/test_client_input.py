"""Client input that used to crash a handler (500 INTERNAL) is a 4xx with a code (issue 13, finding 3)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

CODES_4XX = {"VALIDATION_ERROR", "AUTH_REQUIRED", "PAYLOAD_TOO_LARGE"}


async def test_login_with_a_password_over_72_bytes_is_refused_not_crashed(client_factory, mint):
    client = client_factory(mint("v-long-password", "visitor"), 0)
    for password in ("x" * 73, "ñ" * 40, "x" * 200):
        response = await client.http.post("/api/v1/auth/login", json={"email": "agent@relay.dev", "password": password})
        assert 400 <= response.status_code < 500, (len(password), response.text)
        assert response.json()["error"]["code"] in CODES_4XX


@pytest.mark.parametrize(
    ("path", "depth"),
    [
        ("/v2/chats", 30_000),
        ("/v2/messages", 30_000),
        ("/v2/channels", 30_000),
        ("/api/mensajeria/conversaciones", 30_000),
        ("/api/v1/orders", 10_000),  # its bodies are at most 16 KiB
    ],
)
async def test_deeply_nested_json_is_refused_not_crashed(client_factory, mint, storage, path, depth):
    client = client_factory(mint("a-nested", "agent", tenant="acme"), 0)
    before = await storage.snapshot()
    response = await client.http.post(
        path, content=b"[" * depth, headers={**client._headers(), "content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    nested_object = b'{"a":' * 2_000 + b"1" + b"}" * 2_000
    response = await client.http.post(
        path, content=nested_object, headers={**client._headers(), "content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert await storage.snapshot() == before


async def test_lone_surrogates_are_refused_not_crashed(client_factory, mint, storage):
    client = client_factory(mint("v-surrogate", "visitor"), 0)
    chat_id = (await client.open_chat())["chatId"]
    before = await storage.snapshot()
    for raw in (
        b'{"chatId":"%s","content":"\\ud800"}' % chat_id.encode(),
        b'{"chatId":"%s","content":"ok \\udfff end"}' % chat_id.encode(),
        b'{"subject":"\\ud83d"}',
    ):
        path = "/v2/chats" if b"subject" in raw else "/v2/messages"
        response = await client.http.post(
            path, content=raw, headers={**client._headers(), "content-type": "application/json"}
        )
        assert response.status_code == 400, (raw, response.text)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    async with client.socket() as sock:
        ack = await sock.call("chat:join", {"chatId": "\ud800"})
        assert ack["success"] is False and ack["error"]["code"] == "VALIDATION_ERROR", ack
        assert (await sock.call("health-check"))["success"] is True
    # a proper surrogate pair (an emoji) is ordinary text
    sent = await client.send(chat_id, "ok \U0001f600")
    assert sent["content"] == "ok \U0001f600"
    after = await storage.snapshot()
    assert after["messages"] == before.get("messages", 0) + 1
