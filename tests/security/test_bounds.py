"""Numbers beyond what any store holds, and text no store should keep, are refused at once with
VALIDATION_ERROR (issue 13, findings 1 and 7); history reads are rate limited."""

from __future__ import annotations

import asyncio
import time

import pytest

pytestmark = pytest.mark.e2e

HUGE = 10**30
FAST = 4.0  # seconds: a refusal at the edge, not a service timing out (RPC_TIMEOUT_SECONDS is 5); a busy CI box


async def _chat_and_channel(client_factory, mint, user: str):
    agent = client_factory(mint(user, "agent"), 0)
    chat = await agent.open_chat()
    channel = await agent.post("/v2/channels", {"name": f"bounds-{user}"})
    conversation = await agent.post(
        "/api/mensajeria/conversaciones", {"participantes": [{"usuario": user, "rol": "experto"}], "tipo": "grupal"}
    )
    return agent, chat["chatId"], channel["channelId"], conversation["conversacion"]["id"]


async def test_integers_beyond_64_bits_are_refused_at_once_on_sockets(client_factory, mint, gateways):
    agent, chat_id, channel_id, _ = await _chat_and_channel(client_factory, mint, "a-bounds-sock")
    async with agent.socket() as sock, agent.socket("/chat") as chat_sock:
        for socket_, event, payload in (
            (sock, "chat:sync", {"chatId": chat_id, "afterSeq": HUGE}),
            (chat_sock, "sync_request", {"channelId": channel_id, "lastSeq": HUGE}),
            (chat_sock, "sync_request", {"channelId": channel_id, "lastSeq": 2**63}),
        ):
            started = time.monotonic()
            ack = await socket_.call(event, payload)
            assert time.monotonic() - started < FAST, (event, ack)
            assert ack["success"] is False and ack["error"]["code"] == "VALIDATION_ERROR", (event, ack)
        # the socket still works and the data is intact
        assert (await sock.call("chat:sync", {"chatId": chat_id, "afterSeq": 0}))["success"] is True


async def test_integers_beyond_64_bits_are_refused_at_once_on_every_history_route(client_factory, mint):
    agent, chat_id, channel_id, conv_id = await _chat_and_channel(client_factory, mint, "a-bounds-rest")
    for path in (
        f"/v2/messages/chat/{chat_id}",
        f"/v2/channels/{channel_id}/messages",
        f"/api/v1/channels/{channel_id}/messages",
        f"/api/mensajeria/conversaciones/{conv_id}/mensajes",
    ):
        for query in ("afterSeq=99999999999999999999999", "before=99999999999999999999999", "afterSeq=-1"):
            started = time.monotonic()
            response = await agent.http.get(f"{path}?{query}", headers=agent._headers())
            assert time.monotonic() - started < FAST, (path, query)
            assert response.status_code == 400, (path, query, response.text)
            assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_history_reads_are_rate_limited(client_factory, mint):
    agent = client_factory(mint("a-bounds-history", "agent"), 0)
    chat_id = (await agent.open_chat())["chatId"]

    async def read() -> int:
        response = await agent.http.get(f"/v2/messages/chat/{chat_id}", headers=agent._headers())
        return response.status_code

    codes = await asyncio.gather(*(read() for _ in range(70)))
    assert 429 in codes and 200 in codes, codes
    limited = await agent.http.get(f"/v2/messages/chat/{chat_id}", headers=agent._headers())
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "RATE_LIMITED"
    assert int(limited.headers["retry-after"]) >= 1


async def test_loose_values_are_refused(client_factory, mint, storage):
    """Finding 7: `lastSeq: true`, emoji with NUL or whitespace, NUL in message text."""
    agent, chat_id, channel_id, _ = await _chat_and_channel(client_factory, mint, "a-bounds-loose")
    async with agent.socket("/chat") as chat_sock:
        ack = await chat_sock.call("sync_request", {"channelId": channel_id, "lastSeq": True})
        assert ack["success"] is False and ack["error"]["code"] == "VALIDATION_ERROR", ack
        sent = await chat_sock.call("send_message", {"channelId": channel_id, "text": "root"})
        assert sent["success"] is True, sent
        before = await storage.snapshot()
        for emoji in ("\x00", " ", "👍 ", "\t", "a\x00b", "\n"):
            ack = await chat_sock.call(
                "add_reaction", {"channelId": channel_id, "messageId": sent["messageId"], "emoji": emoji}
            )
            assert ack["success"] is False and ack["error"]["code"] == "VALIDATION_ERROR", (emoji, ack)
        ack = await chat_sock.call("send_message", {"channelId": channel_id, "text": "nul\x00here"})
        assert ack["success"] is False and ack["error"]["code"] == "VALIDATION_ERROR", ack
        response = await agent.http.post(
            "/v2/messages", json={"chatId": chat_id, "content": "nul\x00here"}, headers=agent._headers()
        )
        assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR"
        assert await storage.snapshot() == before
        ok = await chat_sock.call(
            "add_reaction", {"channelId": channel_id, "messageId": sent["messageId"], "emoji": "👍"}
        )
        assert ok["success"] is True, ok
