"""Typing across replicas with its 5 s expiry, and reconnect with gap recovery (nothing lost, nothing twice)."""

from __future__ import annotations

import asyncio
import time

import pytest
from relay_sdk import ChatFollower, RelaySocket

pytestmark = pytest.mark.e2e


async def test_typing_reaches_other_replica_and_expires_without_refresh(client_factory, mint):
    visitor = client_factory(mint("v-typing", "visitor"), 0)
    agent = client_factory(mint("a-typing", "commercial"), 1)
    chat_id = (await visitor.open_chat())["chatId"]
    async with visitor.socket() as typist, agent.socket() as watcher:
        await typist.join(chat_id)
        await watcher.join(chat_id)

        ack = await typist.call("typing:start", {"chatId": chat_id})
        assert ack["success"] is True and ack["expiresInMs"] == 5000
        typing = await watcher.wait_for("user:typing")
        assert typing["userId"] == "v-typing" and typing["chatId"] == chat_id
        assert typist.received("user:typing") == []  # not echoed to the typist

        assert (await typist.call("typing:stop", {"chatId": chat_id}))["relayed"] is True
        stopped = await watcher.wait_for("user:stop-typing")
        assert stopped["userId"] == "v-typing" and stopped["reason"] == "stopped"

        # no refresh: the state ends by itself after 5 s, on the other replica too
        started = time.monotonic()
        await typist.call("typing:start", {"chatId": chat_id})
        await watcher.wait_for("user:typing", count=2)
        expired = await watcher.wait_for("user:stop-typing", lambda e: e["reason"] == "expired", timeout=10)
        assert expired["userId"] == "v-typing"
        assert 4.5 <= time.monotonic() - started <= 8

        # refreshes keep it alive past 5 s; the last refresh starts a new 5 s
        started = time.monotonic()
        await typist.call("typing:start", {"chatId": chat_id})
        for _ in range(4):
            await asyncio.sleep(1.5)
            await typist.call("typing:start", {"chatId": chat_id})
        assert len(watcher.received("user:stop-typing")) == 2  # still typing after 6 s
        await watcher.wait_for("user:stop-typing", count=3, timeout=10)
        assert time.monotonic() - started >= 10

        # typing in a chat you did not join is refused
        other = (await visitor.open_chat())["chatId"]
        refused = await typist.call("typing:start", {"chatId": other})
        assert refused["success"] is False and refused["error"]["code"] == "PERMISSION_DENIED"


async def test_typing_ends_when_the_typist_disconnects(client_factory, mint):
    visitor = client_factory(mint("v-typing-gone", "visitor"), 1)
    agent = client_factory(mint("a-typing-gone", "agent"), 0)
    chat_id = (await visitor.open_chat())["chatId"]
    async with agent.socket() as watcher:
        await watcher.join(chat_id)
        typist = visitor.socket()
        await typist.connect()
        await typist.join(chat_id)
        await typist.call("typing:start", {"chatId": chat_id})
        await watcher.wait_for("user:typing")
        await typist.close()
        gone = await watcher.wait_for("user:stop-typing", timeout=3)
        assert gone["reason"] == "disconnected"


async def test_a_typists_message_ends_their_typing(client_factory, mint):
    """The typist sends over REST (seed-001's HTTP send): their typing ends with reason "sent",
    on the other replica, without waiting for the 5 s expiry."""
    visitor = client_factory(mint("v-typing-sent", "visitor"), 0)
    agent = client_factory(mint("a-typing-sent", "agent"), 1)
    chat_id = (await visitor.open_chat())["chatId"]
    async with visitor.socket() as typist, agent.socket() as watcher:
        await typist.join(chat_id)
        await watcher.join(chat_id)
        await typist.call("typing:start", {"chatId": chat_id})
        await watcher.wait_for("user:typing")
        started = time.monotonic()
        await visitor.post("/v2/messages", {"chatId": chat_id, "content": "done typing"}, expect=201)
        stopped = await watcher.wait_for("user:stop-typing", timeout=3)
        assert stopped["reason"] == "sent" and stopped["userId"] == "v-typing-sent"
        assert time.monotonic() - started < 3
        assert (await watcher.wait_for("message:new"))["content"] == "done typing"


async def test_reconnect_recovers_the_gap_without_loss_or_duplicates(gateways, client_factory, mint):
    visitor = client_factory(mint("v-gap", "visitor"), 0)
    agent = client_factory(mint("a-gap", "commercial"), 1)
    chat_id = (await visitor.open_chat())["chatId"]
    sock = RelaySocket(gateways[0], auth={"token": visitor.token})
    await sock.connect()
    follower = ChatFollower(sock, chat_id)
    try:
        await follower.start()
        for i in range(3):
            await agent.send(chat_id, f"live {i}")
        await follower.wait_for_count(3)

        await sock.close()  # the connection drops; the chat goes on, with notes the visitor may not see
        await agent.send(chat_id, "missed 0")
        await agent.send(chat_id, "note while away", isInternal=True)
        await visitor.send(chat_id, "missed 1 (from my other tab)")
        await agent.send(chat_id, "missed 2")

        await sock.reconnect(gateways[1])  # back, on the other replica
        await follower.resume()
        await agent.send(chat_id, "live after")
        await agent.send(chat_id, "another note", isInternal=True)
        await agent.send(chat_id, "last")
        got = await follower.wait_for_count(8)
        history = (await visitor.history(chat_id, limit=200))["messages"]
        assert [m["messageId"] for m in got] == [m["messageId"] for m in history]
        assert [m["content"] for m in got] == [
            "live 0",
            "live 1",
            "live 2",
            "missed 0",
            "missed 1 (from my other tab)",
            "missed 2",
            "live after",
            "last",
        ]
        assert len({m["messageId"] for m in got}) == len(got)
        assert not any(m["isInternal"] for m in got)
        # the live copy of anything the sync already gave is dropped, never shown twice
        await asyncio.sleep(0.3)
        assert len(follower.messages) == 8
    finally:
        follower.close()
        await sock.close()


async def test_chat_sync_answers_exactly_the_gap_in_pages(client_factory, mint):
    agent = client_factory(mint("a-sync", "agent"), 0)
    visitor = client_factory(mint("v-sync", "visitor"), 1)
    chat_id = (await visitor.open_chat())["chatId"]
    sent = [await visitor.send(chat_id, f"m{i}") for i in range(5)]
    async with agent.socket() as sock:
        await sock.join(chat_id)
        ack = await sock.call("chat:sync", {"chatId": chat_id, "afterSeq": 2, "limit": 2})
        assert ack["success"] is True and ack["hasMore"] is True
        assert [m["seq"] for m in ack["messages"]] == [3, 4] and ack["lastSeq"] == 4
        synced = await sock.wait_for("chat:synced")
        assert synced["messages"] == ack["messages"]
        rest = await sock.call("chat:sync", {"chatId": chat_id, "afterSeq": ack["lastSeq"]})
        assert [m["messageId"] for m in rest["messages"]] == [sent[4]["messageId"]] and rest["hasMore"] is False
        assert (await sock.sync(chat_id, 5)) == []
        bad = await sock.call("chat:sync", {"chatId": chat_id, "afterSeq": -1})
        assert bad["success"] is False and bad["error"]["code"] == "VALIDATION_ERROR"
    stranger = client_factory(mint("v-sync-stranger", "visitor"), 0)
    async with stranger.socket() as sock:
        denied = await sock.call("chat:sync", {"chatId": chat_id, "afterSeq": 0})
        assert denied["success"] is False and denied["error"]["code"] == "PERMISSION_DENIED"
