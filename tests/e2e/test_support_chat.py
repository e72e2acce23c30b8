"""seed-001 support chat as its documented clients play it, over both gateway replicas.

Visitor on a `visitor_session` cookie, agents on a JWT (`auth.token`) and a `console_session`
cookie; messages sent over HTTP, received as `message:new` on `chat:{id}`; internal notes for
agents only; `chat:status` on first response and on close; chat lists with unread counts.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from relay_sdk import RelaySocket

pytestmark = pytest.mark.e2e

SEED_MESSAGE_KEYS = {"messageId", "chatId", "senderId", "content", "type", "isInternal", "isFirstResponse", "sentAt"}


async def visitor_browser(url: str, name: str) -> tuple[httpx.AsyncClient, str, str]:
    """A browser that got a visitor_session cookie: (client, cookie, visitor id)."""
    browser = httpx.AsyncClient(base_url=url, timeout=15)
    created = await browser.post("/v2/visitor/session", json={"tenantId": "acme", "name": name})
    assert created.status_code == 201
    return browser, created.cookies["visitor_session"], created.json()["visitorId"]


async def test_seed_001_client_flow_across_replicas(gateways, client_factory, mint):
    browser, cookie, visitor_id = await visitor_browser(gateways[0], "Vera")
    agent = client_factory(mint("a-flow-1", "commercial"), 1)
    async with httpx.AsyncClient(base_url=gateways[1], timeout=15) as console:
        login = await console.post("/api/v1/auth/login", json={"email": "agent2@relay.dev", "password": "demo1234"})
        assert login.status_code == 200
        console_cookie = login.cookies["console_session"]
    try:
        chat = (await browser.post("/v2/chats", json={"subject": "pedido"})).json()
        chat_id = chat["chatId"]
        assert chat["status"] == "PENDING"

        # Opción B: cookies (visitor), on replica 1; Opción A: auth.token (agent) on replica 0
        visitor_sock = RelaySocket(
            gateways[1], headers={"Cookie": f"visitor_session={cookie}"}, transports=["polling", "websocket"]
        )
        agent_sock = RelaySocket(gateways[0], auth={"token": agent.token})
        async with visitor_sock, agent_sock:
            welcome = await visitor_sock.wait_for("welcome")
            assert set(welcome) >= {"message", "clientId", "timestamp"}
            ack = await visitor_sock.call("chat:join", {"chatId": chat_id})
            assert ack["success"] is True and ack["roomName"] == f"chat:{chat_id}"
            joined = await visitor_sock.wait_for("chat:joined")
            assert set(joined) == {"chatId", "roomName", "timestamp"}
            assert (await agent_sock.call("chat:join", {"chatId": chat_id}))["success"] is True
            notes_ack = await agent_sock.call("chat:join", {"chatId": f"chat:{chat_id}:commercial"})
            assert notes_ack["success"] is True and notes_ack["roomName"] == f"chat:{chat_id}:commercial"

            # 6. Enviar un Mensaje (via HTTP) with cookies
            sent = (
                await browser.post("/v2/messages", json={"chatId": chat_id, "content": "hola", "type": "text"})
            ).json()
            for sock in (visitor_sock, agent_sock):
                got = await sock.wait_for("message:new")
                assert SEED_MESSAGE_KEYS <= set(got)
                assert got["messageId"] == sent["messageId"] and got["senderId"] == visitor_id
                assert got["isInternal"] is False and got["type"] == "text"

            # internal note: agents only
            note = await agent.send(chat_id, "Cliente VIP - Priorizar atención", isInternal=True)
            assert note["isInternal"] is True
            got_note = await agent_sock.wait_for("message:new", lambda m: m["isInternal"])
            assert got_note["messageId"] == note["messageId"]

            # first agent answer → IN_PROGRESS, announced with chat:status
            answer = await agent.send(chat_id, "¿En qué puedo ayudarte?")
            assert answer["isFirstResponse"] is True
            status = await visitor_sock.wait_for("chat:status")
            assert status["chatId"] == chat_id and status["status"] == "IN_PROGRESS" and status["timestamp"]
            got = await visitor_sock.wait_for("message:new", lambda m: m["messageId"] == answer["messageId"])
            assert got["isFirstResponse"] is True
            assert (await agent.chat(chat_id))["status"] == "IN_PROGRESS"

            # history as the seed's hook loads it, and the dateFrom sync of seed-001
            history = (await browser.get(f"/v2/messages/chat/{chat_id}?limit=50")).json()
            assert [m["content"] for m in history["messages"]] == ["hola", "¿En qué puedo ayudarte?"]
            since = history["messages"][0]["sentAt"]
            newer = (await browser.get(f"/v2/messages/chat/{chat_id}", params={"dateFrom": since, "limit": 100})).json()
            assert [m["messageId"] for m in newer["messages"]] == [answer["messageId"]]

            # 7. chat:leave: confirmed, and nothing more arrives
            left = await visitor_sock.call("chat:leave", {"chatId": chat_id})
            assert left["success"] is True
            await visitor_sock.wait_for("chat:left")
            before = len(visitor_sock.received("message:new"))
            await agent.send(chat_id, "after leave")
            await agent_sock.wait_for("message:new", lambda m: m["content"] == "after leave")
            await asyncio.sleep(0.3)
            assert len(visitor_sock.received("message:new")) == before

            # closing: agents only; everyone in the room hears chat:status CLOSED
            assert (await visitor_sock.call("chat:join", {"chatId": chat_id}))["success"] is True
            refused = await browser.post(f"/v2/chats/{chat_id}/close")
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "PERMISSION_DENIED"
            closed = await agent.close_chat(chat_id)
            assert closed["status"] == "CLOSED" and closed["closedBy"] == "a-flow-1"
            for sock in (visitor_sock, agent_sock):
                await sock.wait_for("chat:status", lambda s: s["status"] == "CLOSED")
            again = await client_factory(agent.token, 0).post(f"/v2/chats/{chat_id}/close", expect=409)
            assert again["error"]["code"] == "CONFLICT"
            late = await browser.post("/v2/messages", json={"chatId": chat_id, "content": "still there?"})
            assert late.status_code == 403
        # an agent on a console_session cookie (REST and socket) sees the closed chat and its history
        async with httpx.AsyncClient(base_url=gateways[0], cookies={"console_session": console_cookie}) as console:
            listed = (await console.get("/v2/chats")).json()["chats"]
            assert chat_id in {c["chatId"] for c in listed}
            console_sock = RelaySocket(gateways[1], headers={"Cookie": f"console_session={console_cookie}"})
            async with console_sock:
                assert (await console_sock.join(f"chat:{chat_id}:commercial"))["success"] is True
                synced = await console_sock.sync(chat_id, 0)
                assert any(m["isInternal"] for m in synced)
    finally:
        await browser.aclose()


async def test_chat_list_counts_unread_and_previews_hide_notes(client_factory, mint):
    visitor = client_factory(mint("v-list", "visitor"), 0)
    agent = client_factory(mint("a-list", "agent"), 1)
    first = (await visitor.open_chat("uno"))["chatId"]
    second = (await visitor.open_chat("dos"))["chatId"]
    await agent.send(first, "respuesta 1")
    await agent.send(first, "respuesta 2")
    await agent.send(first, "nota secreta", isInternal=True)
    await visitor.send(second, "¿hola?")

    mine = {c["chatId"]: c for c in await visitor.chats()}
    assert set(mine) == {first, second}
    assert mine[first]["unreadCount"] == 2  # the note does not count for the visitor
    assert mine[first]["lastMessage"]["content"] == "respuesta 2"
    assert mine[second]["unreadCount"] == 0 and mine[second]["lastMessage"]["content"] == "¿hola?"
    one = await visitor.chat(first)
    assert one["unreadCount"] == 2 and one["lastMessage"]["content"] == "respuesta 2"

    queue = {c["chatId"]: c for c in await agent.chats()}
    assert {first, second} <= set(queue)  # the tenant's support queue
    assert queue[first]["lastMessage"]["content"] == "nota secreta" and queue[first]["lastMessage"]["isInternal"]
    assert queue[second]["unreadCount"] == 0  # not a member of that chat yet
    await visitor.send(first, "gracias")
    assert (await agent.chat(first))["unreadCount"] == 1  # answering made the agent a member
    pending = await agent.chats(status="PENDING")
    assert second in {c["chatId"] for c in pending} and first not in {c["chatId"] for c in pending}

    outsider = client_factory(mint("v-list-other", "visitor"), 1)
    assert await outsider.chats() == []
    other_tenant = client_factory(mint("a-list-globex", "agent", tenant="globex"), 0)
    assert first not in {c["chatId"] for c in await other_tenant.chats()}


async def test_visitor_never_receives_an_internal_note_by_any_path(client_factory, mint):
    visitor = client_factory(mint("v-notes-all", "visitor"), 0)
    agent = client_factory(mint("a-notes-all", "commercial"), 1)
    chat_id = (await visitor.open_chat())["chatId"]
    visitor_socks = [
        visitor.socket(),
        RelaySocket(client_factory(visitor.token, 1).base_url, auth={"token": visitor.token}),
    ]
    agent_sock = agent.socket()
    for sock in (*visitor_socks, agent_sock):
        await sock.connect()
        await sock.join(chat_id)
    try:
        await agent.send(chat_id, "public 1")
        note = await agent.send(chat_id, "NOTE: visitor is rude", isInternal=True)
        await agent.send(chat_id, "public 2")
        # the agent sees all three; every visitor socket sees only the public ones
        await agent_sock.wait_for("message:new", count=3)
        for sock in visitor_socks:
            got = await sock.wait_for("message:new", count=2)
            assert [m["content"] for m in got] == ["public 1", "public 2"]
            synced = await sock.sync(chat_id, 0)
            assert [m["content"] for m in synced] == ["public 1", "public 2"]
            ack = await sock.call("chat:join", {"chatId": f"chat:{chat_id}:commercial"})
            assert ack["success"] is False and ack["error"]["code"] == "PERMISSION_DENIED"
        await asyncio.sleep(0.3)
        for sock in visitor_socks:
            assert all(not m["isInternal"] for m in sock.received("message:new"))
            assert "NOTE" not in repr(sock.events)
        history = await visitor.history(chat_id)
        assert [m["content"] for m in history["messages"]] == ["public 1", "public 2"]
        assert note["seq"] not in [m["seq"] for m in (await visitor.history(chat_id, afterSeq=0))["messages"]]
        assert (await visitor.chat(chat_id))["lastMessage"]["content"] == "public 2"
        agent_history = await agent.history(chat_id)
        assert [m["content"] for m in agent_history["messages"]] == ["public 1", "NOTE: visitor is rude", "public 2"]
    finally:
        for sock in (*visitor_socks, agent_sock):
            await sock.close()
