"""Who sees whose presence, and in which dialect (SPEC §4, docs/presence.md), across two replicas.

Absence is checked behind a barrier: a `ping` answered on the same socket after the event would have
been written to it (a socket's frames leave in order).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from relay_devstack import Stack
from relay_sdk import RelayClient, RelaySocket

from tests.e2e.conftest import socket_opener

pytestmark = pytest.mark.e2e

PRESENCE = (
    "user-connected",
    "user-disconnected",
    "usuario_conectado",
    "usuario_desconectado",
    "estado_usuario_cambiado",
)


@pytest.fixture
def tenant() -> str:
    return f"aud-{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def sockets(stack: Stack, mint, tenant) -> Any:
    async with socket_opener(stack.gateway_urls) as opener:

        async def make(
            user: str,
            role: str,
            replica: int = 0,
            *,
            dialect: str | None = None,
            namespace: str = "/",
            token: bool = True,
        ) -> RelaySocket:
            auth = {"token": mint(user, role, tenant=tenant)} if token else {}
            return await opener(replica, auth, namespace, dialect)

        yield make


def about(user: str) -> Callable[[Any], bool]:
    return lambda e: (e.get("user") or {}).get("userId", e.get("usuarioId", e.get("userId"))) == user


def seen(sock: RelaySocket, user: str) -> dict[str, int]:
    """How many presence events of each name `sock` got about `user`."""
    counts = {event: len([e for e in sock.received(event) if about(user)(e)]) for event in PRESENCE}
    counts["user_presence"] = len([e for e in sock.received("user_presence") if e["userId"] == user])
    return {k: v for k, v in counts.items() if v}


async def settled(*socks: RelaySocket) -> None:
    for sock in socks:
        await sock.call("ping")  # its ack (on /chat an empty one) comes after anything queued before it


async def test_each_socket_gets_a_transition_once_in_the_dialect_it_speaks(sockets, stack: Stack, mint, tenant):
    async with RelayClient(stack.gateway_urls[0], token=mint("lead", "agent", tenant=tenant)) as lead:
        await lead.post("/v2/channels", {"name": "ops", "members": ["ana"]}, expect=201)
        chat_id = (await lead.post("/v2/chats", {"subject": "queue"}))["chatId"]
    users = await sockets("u002", "agent", 0)
    assert (await users.call("get-active-users"))["success"] is True  # seed-002 from its first event on
    late = await sockets("u003", "cliente", 1, token=False)  # seed-003: late `autenticar`
    ack = await late.call("autenticar", {"usuarioId": "u003", "token": mint("u003", "cliente", tenant=tenant)})
    assert ack["success"] is True
    hinted = await sockets("h003", "experto", 0, dialect="mensajeria")
    support = await sockets("s001", "agent", 1)
    assert (await support.call("chat:join", {"chatId": chat_id}))["success"] is True
    silent = await sockets("quiet", "agent", 1)  # says nothing: seed-002's events, the platform default
    channel = await sockets("lead", "agent", 0, namespace="/chat")
    await settled(users, late, hinted, support, silent, channel)

    ana = await sockets("ana", "agent", 1)
    await users.wait_for("user-connected", about("ana"))
    await late.wait_for("estado_usuario_cambiado", about("ana"))
    await hinted.wait_for("estado_usuario_cambiado", about("ana"))
    await silent.wait_for("user-connected", about("ana"))
    await channel.wait_for("user_presence", about("ana"))
    await settled(users, late, hinted, support, silent, channel)
    assert seen(users, "ana") == {"user-connected": 1}
    assert seen(late, "ana") == {"usuario_conectado": 1, "estado_usuario_cambiado": 1}
    assert seen(hinted, "ana") == {"usuario_conectado": 1, "estado_usuario_cambiado": 1}
    assert seen(silent, "ana") == {"user-connected": 1}
    assert seen(support, "ana") == {}  # seed-001 has no presence events
    assert seen(channel, "ana") == {"user_presence": 1}

    await ana.close()
    await users.wait_for("user-disconnected", about("ana"), timeout=15)
    await late.wait_for("usuario_desconectado", about("ana"))
    # /chat's `user_presence` follows a channel lookup at the message service: it may trail the others
    await channel.wait_for("user_presence", about("ana"), count=2)
    await settled(users, late, hinted, support, silent, channel)
    assert seen(users, "ana") == {"user-connected": 1, "user-disconnected": 1}
    assert seen(hinted, "ana") == {"usuario_conectado": 1, "usuario_desconectado": 1, "estado_usuario_cambiado": 2}
    assert seen(support, "ana") == {}
    assert seen(channel, "ana") == {"user_presence": 2}


async def test_a_visitor_sees_only_the_people_of_their_chats_in_each_dialect(sockets, stack: Stack, mint, tenant):
    visitor = RelayClient(stack.gateway_urls[0], token=mint("vis", "visitor", tenant=tenant))
    other_visitor = RelayClient(stack.gateway_urls[1], token=mint("vis2", "visitor", tenant=tenant))
    helper = RelayClient(stack.gateway_urls[1], token=mint("helper", "agent", tenant=tenant))
    lead = RelayClient(stack.gateway_urls[0], token=mint("lead", "agent", tenant=tenant))
    try:
        chat_id = (await visitor.open_chat("help"))["chatId"]
        await other_visitor.open_chat("me too")
        await helper.send(chat_id, "hello, how can I help?")  # helper is now one of the chat's people
        # a channel the visitors share with the lead (seed-000 `user_presence` goes to the user's channels)
        await lead.post("/v2/channels", {"name": "beta", "members": ["vis", "vis2"]}, expect=201)
    finally:
        for client in (visitor, other_visitor, helper, lead):
            await client.close()
    as_users = await sockets("vis", "visitor", 0, dialect="users")
    as_mensajeria = await sockets("vis", "visitor", 1, dialect="mensajeria")
    on_chat = await sockets("vis", "visitor", 1, namespace="/chat")
    agent = await sockets("watcher", "agent", 0)
    agent_chat = await sockets("lead", "agent", 1, namespace="/chat")
    watchers = (as_users, as_mensajeria, on_chat, agent, agent_chat)
    await settled(*watchers)

    await sockets("helper", "agent", 1)
    await sockets("stranger", "agent", 0)  # an agent of the tenant, not in the visitor's chats
    await sockets("vis2", "visitor", 1)  # another visitor (shares a channel with vis: still never shown)
    for user in ("helper", "stranger", "vis2", "lead"):
        await agent.wait_for("user-connected", about(user))  # the tenant's agents see everyone
    await agent_chat.wait_for("user_presence", about("vis2"))
    await as_users.wait_for("user-connected", about("helper"))
    await as_mensajeria.wait_for("usuario_conectado", about("helper"))
    await on_chat.wait_for("user_presence", about("lead"))  # online since agent_chat connected
    await settled(*watchers)

    assert seen(as_users, "helper") == {"user-connected": 1}
    assert seen(as_users, "lead") == {"user-connected": 1}  # the lead shares the channel with her
    assert seen(as_mensajeria, "helper") == {"usuario_conectado": 1, "estado_usuario_cambiado": 1}
    for sock in (as_users, as_mensajeria):
        assert seen(sock, "stranger") == {} and seen(sock, "vis2") == {}
    assert seen(on_chat, "vis2") == {} and seen(on_chat, "lead") == {"user_presence": 1}
    listed = await as_users.call("get-active-users")
    assert sorted(u["userId"] for u in listed["users"]) == ["helper", "lead"] and listed["count"] == 2
    assert "vis2" in [u["userId"] for u in (await agent.call("get-active-users"))["users"]]
    async with RelayClient(stack.gateway_urls[1], token=mint("vis", "visitor", tenant=tenant)) as rest:
        ops = await rest.get("/websocket/active-users")
        assert sorted(u["userId"] for u in ops["users"]) == ["helper", "lead"]
        assert sorted(t["userId"] for t in ops["stats"]["connectionTimes"]) == ["helper", "lead"]
