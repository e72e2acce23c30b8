"""Per-user rate limits shared across replicas, and tokens that expire mid-connection."""

from __future__ import annotations

import asyncio
import time

import pytest
from relay_sdk import RelaySocket

pytestmark = pytest.mark.e2e


async def test_join_limit_is_shared_by_both_replicas(client_factory, mint):
    visitor = client_factory(mint("v-rate-join", "visitor"), 0)
    chat_id = (await visitor.open_chat())["chatId"]
    on_a, on_b = visitor.socket(), client_factory(visitor.token, 1).socket()
    async with on_a, on_b:
        # the default rule: 30 joins per 10 s per user, counted in Redis whichever replica answers
        for i in range(30):
            ack = await (on_a, on_b)[i % 2].call("chat:join", {"chatId": chat_id})
            assert ack["success"] is True, ack
        refused = await on_b.call("chat:join", {"chatId": chat_id})
        assert refused["success"] is False and refused["error"]["code"] == "RATE_LIMITED"
        assert 0 < refused["error"]["retryAfterMs"] <= 10_000
        event = await on_b.wait_for("error")
        assert event["code"] == "RATE_LIMITED" and event["retryAfterMs"] > 0
        assert (await on_a.call("chat:join", {"chatId": chat_id}))["error"]["code"] == "RATE_LIMITED"
        # another user is not affected, and the limited sockets stay connected and usable
        other = client_factory(mint("v-rate-join-2", "visitor"), 1)
        async with other.socket() as sock:
            assert (await sock.call("health-check"))["success"] is True
        assert on_a.connected and on_b.connected
        assert (await on_a.call("chat:sync", {"chatId": chat_id, "afterSeq": 0}))["success"] is True


async def test_rest_writes_are_limited_across_replicas_with_retry_after(client_factory, mint):
    """Every write counts against `rest_write`; messages also count against `message` (30 per 10 s)."""
    token = mint("v-rate-rest", "visitor")
    replicas = [client_factory(token, 0), client_factory(token, 1)]
    # 60 writes per 10 s: invalid bodies count too (flooding is flooding), and store nothing
    for i in range(60):
        response = await replicas[i % 2].http.post("/v2/chats", json={"nope": i}, headers=replicas[0]._headers())
        assert response.status_code == 400
    limited = await replicas[1].http.post("/v2/chats", json={}, headers=replicas[1]._headers())
    assert limited.status_code == 429
    body = limited.json()
    assert body["error"]["code"] == "RATE_LIMITED" and 0 < body["error"]["retryAfterMs"] <= 10_000
    assert 1 <= int(limited.headers["retry-after"]) <= 10

    sender = client_factory(mint("v-rate-msg", "visitor"), 0)
    chat_id = (await sender.open_chat())["chatId"]
    accepted = 0
    for i in range(31):
        response = await sender.http.post(
            "/v2/messages", json={"chatId": chat_id, "content": f"m{i}"}, headers=sender._headers()
        )
        if response.status_code == 201:
            accepted += 1
        else:
            assert response.status_code == 429 and response.json()["error"]["code"] == "RATE_LIMITED"
    assert accepted == 30
    assert len((await sender.history(chat_id, limit=100))["messages"]) == 30
    # nothing was created, and reads are not writes
    assert await replicas[0].chats() == []


async def test_socket_whose_token_expires_is_told_and_disconnected(gateways, mint):
    sock = RelaySocket(gateways[1], auth={"token": mint("v-expiring", "visitor", ttl=2)})
    await sock.connect()
    disconnected = asyncio.Event()
    sock.sio.on("disconnect", disconnected.set)
    try:
        error = await sock.wait_for("error", lambda e: e["code"] == "TOKEN_EXPIRED", timeout=8)
        assert "expired" in error["message"]
        await asyncio.wait_for(disconnected.wait(), 5)
        assert not sock.connected
    finally:
        await sock.close()


async def test_refresh_with_a_fresh_token_of_the_same_user_keeps_the_socket(gateways, mint, client_factory):
    short = mint("v-refresh", "visitor", ttl=2)
    visitor = client_factory(mint("v-refresh", "visitor"), 0)
    chat_id = (await visitor.open_chat())["chatId"]
    sock = RelaySocket(gateways[0], auth={"token": short})
    await sock.connect()
    try:
        connected_at = time.time()
        wrong_user = await sock.call("auth:refresh", {"token": mint("v-someone-else", "visitor")})
        assert wrong_user["success"] is False and wrong_user["error"]["code"] == "PERMISSION_DENIED"
        other_tenant = await sock.call("auth:refresh", {"token": mint("v-refresh", "visitor", tenant="globex")})
        assert other_tenant["success"] is False and other_tenant["error"]["code"] == "PERMISSION_DENIED"
        stale = await sock.call("auth:refresh", {"token": mint("v-refresh", "visitor", ttl=-60)})
        assert stale["success"] is False and stale["error"]["code"] == "TOKEN_EXPIRED"
        garbage = await sock.call("auth:refresh", {"token": "not.a.jwt"})
        assert garbage["success"] is False and garbage["error"]["code"] == "AUTH_REQUIRED"

        ack = await sock.call("auth:refresh", {"token": mint("v-refresh", "visitor", ttl=3600)})
        assert ack["success"] is True and ack["expiresAt"] > time.time() + 3000
        # well past the first token's expiry the socket is still connected and served
        await asyncio.sleep(max(0.0, connected_at + 4 - time.time()))
        assert sock.connected
        assert (await sock.call("chat:join", {"chatId": chat_id}))["success"] is True
        assert [e for e in sock.received("error") if "field" not in e] == []  # only the refusals above
    finally:
        await sock.close()


async def test_socket_packet_over_64_kib_is_refused_and_a_huge_frame_closes_the_connection(client_factory, mint):
    """Over MAX_PACKET_BYTES: a clear PAYLOAD_TOO_LARGE and nothing stored, the socket stays.
    Over MAX_FRAME_BYTES (1 MiB): the transport closes that connection before parsing anything."""
    visitor = client_factory(mint("v-big-packet", "visitor"), 1)
    chat_id = (await visitor.open_chat())["chatId"]
    sock = visitor.socket()
    await sock.connect()
    disconnected = asyncio.Event()
    sock.sio.on("disconnect", disconnected.set)
    try:
        ack = await sock.call("chat:join", {"chatId": chat_id, "padding": "x" * 70_000})
        assert ack["success"] is False and ack["error"]["code"] == "PAYLOAD_TOO_LARGE", ack
        assert (await sock.wait_for("error"))["code"] == "PAYLOAD_TOO_LARGE"
        assert sock.received("chat:joined") == [] and sock.connected
        assert (await sock.join(chat_id))["success"] is True  # the same connection goes on

        await sock.emit("chat:join", {"chatId": chat_id, "padding": "x" * 1_100_000})
        await asyncio.wait_for(disconnected.wait(), 5)
        assert (await visitor.history(chat_id))["messages"] == []
        await sock.reconnect()  # the user is not banned: a normal connection works again
        assert (await sock.join(chat_id))["success"] is True
    finally:
        await sock.close()
