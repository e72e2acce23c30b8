"""Issue 2: one message through the whole architecture, across two gateway replicas."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from relay_sdk import RelayClient, RelaySocket
from relay_sdk.client import RelayError

pytestmark = pytest.mark.e2e


async def open_chat(visitor: RelayClient) -> str:
    chat = await visitor.post("/v2/chats", {"subject": "my order is late"}, expect=201)
    assert chat["status"] == "PENDING"
    return str(chat["chatId"])


async def test_message_reaches_every_member_on_both_replicas_once_in_order(client_factory, mint):
    visitor = client_factory(mint("v-spine", "visitor"), 0)
    agent_a = client_factory(mint("a-spine-1", "commercial"), 0)
    agent_b = client_factory(mint("a-spine-2", "agent"), 1)
    chat_id = await open_chat(visitor)

    sockets = [visitor.socket(), agent_a.socket(), agent_b.socket()]
    for sock in sockets:
        await sock.connect()
        ack = await sock.call("chat:join", {"chatId": chat_id})
        assert ack["success"] is True and ack["roomName"] == f"chat:{chat_id}"
        await sock.wait_for("chat:joined")
    try:
        sent = []
        for i in range(5):
            author = (visitor, agent_b)[i % 2]
            sent.append(await author.post("/v2/messages", {"chatId": chat_id, "content": f"m{i}"}, expect=201))
        assert [m["seq"] for m in sent] == [1, 2, 3, 4, 5]
        for sock in sockets:
            got = await sock.wait_for("message:new", count=5)
            assert [m["content"] for m in got] == [f"m{i}" for i in range(5)]
            assert [m["seq"] for m in got] == [1, 2, 3, 4, 5]
        # nothing arrives twice, even after the path has settled
        await asyncio.sleep(0.5)
        for sock in sockets:
            assert len(sock.received("message:new")) == 5
        # the first agent answer (m1, by agent_b on replica B) moved the chat to IN_PROGRESS
        status = await sockets[0].wait_for("chat:status")
        assert status == {"chatId": chat_id, "status": "IN_PROGRESS", "timestamp": status["timestamp"]}
        assert sent[1]["isFirstResponse"] is True and sent[3]["isFirstResponse"] is False

        page = await visitor.history(chat_id, limit=50)
        assert [m["seq"] for m in page["messages"]] == [1, 2, 3, 4, 5]
        assert page["hasMore"] is False
        tail = await visitor.history(chat_id, afterSeq=3)
        assert [m["content"] for m in tail["messages"]] == ["m3", "m4"]
        first_two = await visitor.history(chat_id, limit=2, afterSeq=0)
        assert [m["seq"] for m in first_two["messages"]] == [1, 2] and first_two["hasMore"] is True
    finally:
        for sock in sockets:
            await sock.close()


async def test_retried_post_with_same_client_message_id_creates_nothing_new(client_factory, mint):
    visitor = client_factory(mint("v-retry", "visitor"), 0)
    chat_id = await open_chat(visitor)
    async with visitor.socket() as sock:
        await sock.call("chat:join", {"chatId": chat_id})
        body = {"chatId": chat_id, "content": "only once", "clientMessageId": "c-1"}
        first = await visitor.post("/v2/messages", body, expect=201)
        again = await client_factory(visitor.token, 1).post("/v2/messages", body, expect=201)
        assert again["messageId"] == first["messageId"] and again["seq"] == first["seq"] == 1
        await sock.wait_for("message:new")
        await asyncio.sleep(0.5)
        assert len(sock.received("message:new")) == 1
    page = await visitor.history(chat_id)
    assert len(page["messages"]) == 1


async def test_non_member_cannot_join_or_read(client_factory, mint):
    owner = client_factory(mint("v-owner", "visitor"), 0)
    stranger = client_factory(mint("v-stranger", "visitor"), 1)
    other_tenant_agent = client_factory(mint("a-other", "commercial", tenant="globex"), 1)
    chat_id = await open_chat(owner)
    for client in (stranger, other_tenant_agent):
        async with client.socket() as sock:
            ack = await sock.call("chat:join", {"chatId": chat_id})
            assert ack["success"] is False
            assert ack["error"]["code"] in {"PERMISSION_DENIED", "NOT_FOUND"}
            error = await sock.wait_for("error")
            assert error["code"] == ack["error"]["code"]
    with pytest.raises(RelayError) as denied:
        await stranger.history(chat_id)
    assert denied.value.status == 403
    with pytest.raises(RelayError) as hidden:
        await other_tenant_agent.history(chat_id)
    assert hidden.value.status == 404  # another tenant's chat does not exist for you


async def test_visitor_cannot_join_agents_notes_room(client_factory, mint):
    visitor = client_factory(mint("v-notes", "visitor"), 0)
    chat_id = await open_chat(visitor)
    async with visitor.socket() as sock:
        ack = await sock.call("chat:join", {"chatId": f"chat:{chat_id}:commercial"})
        assert ack["success"] is False and ack["error"]["code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"content": "no chat"}, 400, "VALIDATION_ERROR", "chatId"),
        ({"chatId": "CHAT", "content": 42}, 400, "VALIDATION_ERROR", "content"),
        ({"chatId": "CHAT", "content": "x", "type": "hologram"}, 400, "VALIDATION_ERROR", "type"),
        ({"chatId": "CHAT", "content": "x" * 4001}, 400, "VALIDATION_ERROR", "content"),
        ({"chatId": "CHAT", "content": "   "}, 400, "VALIDATION_ERROR", "content"),
        ({"chatId": "CHAT", "content": "x", "isInternal": True}, 403, "PERMISSION_DENIED", "isInternal"),
        ({"chatId": "does-not-exist", "content": "x"}, 404, "NOT_FOUND", "chatId"),
        ({"chatId": "CHAT", "content": "x", "unknown": 1}, 400, "VALIDATION_ERROR", "unknown"),
    ],
)
async def test_bad_input_gets_a_clear_error_and_stores_nothing(client_factory, mint, body, status, code, field):
    visitor = client_factory(mint(f"v-bad-{uuid.uuid4().hex[:6]}", "visitor"), 0)
    chat_id = await open_chat(visitor)
    payload = {k: (chat_id if v == "CHAT" else v) for k, v in body.items()}
    with pytest.raises(RelayError) as refused:
        await visitor.post("/v2/messages", payload)
    assert refused.value.status == status
    assert refused.value.body["error"]["code"] == code
    assert refused.value.body["error"].get("field") == field
    assert (await visitor.history(chat_id))["messages"] == []


async def test_unauthenticated_requests_and_handshakes_are_refused(stack, mint):
    async with RelayClient(stack.gateway_urls[0]) as anonymous:
        with pytest.raises(RelayError) as refused:
            await anonymous.post("/v2/chats", {})
        assert refused.value.status == 401 and refused.value.code == "AUTH_REQUIRED"
    expired = mint("v-exp", "visitor", ttl=-60)
    sock = RelaySocket(stack.gateway_urls[1], auth={"token": expired})
    with pytest.raises(Exception, match=r"(?i)expired|connect"):
        await sock.connect(timeout=5)


async def test_oversize_body_is_refused(client_factory, mint):
    visitor = client_factory(mint("v-big", "visitor"), 0)
    chat_id = await open_chat(visitor)
    with pytest.raises(RelayError) as refused:
        await visitor.post("/v2/messages", {"chatId": chat_id, "content": "x" * 70_000})
    assert refused.value.status == 413 and refused.value.code == "PAYLOAD_TOO_LARGE"
    assert (await visitor.history(chat_id))["messages"] == []


async def test_health_and_readiness(client_factory, mint, gateways):
    for url in gateways:
        async with RelayClient(url) as anonymous:
            assert (await anonymous.get("/healthz"))["status"] == "ok"
            ready = await anonymous.get("/readyz")
            assert ready["ready"] is True and all(ready["checks"].values())
