"""Presence and seed-002 user management across two gateway replicas and the presence service.

Each test uses its own tenant, so counts are exact; the replica-death test runs last in the module.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from relay_devstack import Stack
from relay_devstack.stack import free_port
from relay_sdk import Emitter, RelayClient, RelaySocket, emit

from tests.e2e.conftest import AMQP_URL, REDIS_URL, relay_stack, socket_opener

pytestmark = pytest.mark.e2e

REAP_SECONDS = 5.0


@pytest.fixture(scope="module")
def pstack(tmp_path_factory):
    instance = f"t-pres-{uuid.uuid4().hex[:8]}"
    env = {"LOG_LEVEL": "DEBUG", "PRESENCE_REAP_SECONDS": str(REAP_SECONDS), "PRESENCE_GRACE_SECONDS": "1.5"}
    with relay_stack(instance, tmp_path_factory.mktemp("presence-logs"), env=env) as running:
        yield running


@pytest.fixture
def tenant() -> str:
    return f"ten-{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def open_socket(pstack: Stack, mint) -> Any:
    async with socket_opener(pstack.gateway_urls) as opener:

        async def make(
            user: str, tenant: str, replica: int = 0, *roles: str, namespace: str = "/", dialect: str | None = None
        ) -> RelaySocket:
            token = mint(user, *(roles or ("member",)), tenant=tenant)
            return await opener(replica, {"token": token}, namespace, dialect)

        yield make


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        await asyncio.sleep(0.1)


def about(user: str) -> Callable[[Any], bool]:
    return lambda e: e["user"]["userId"] == user


async def active_ids(sock: RelaySocket) -> list[str]:
    ack = await sock.call("get-active-users")
    return sorted(u["userId"] for u in ack["users"])


async def test_three_tabs_on_two_replicas_are_one_user_announced_once_each_way(open_socket, tenant, pstack, mint):
    watcher = await open_socket("watcher", tenant, 1)  # seed-002 (get-active-users below)
    watcher_es = await open_socket("watcher", tenant, 0, dialect="mensajeria")  # seed-003
    # seed-000 clients: the watcher shares a channel with ana, the outsider shares none
    async with RelayClient(pstack.gateway_urls[0], token=mint("watcher", "member", tenant=tenant)) as rest:
        await rest.post("/v2/channels", {"name": "team", "members": ["ana"]}, expect=201)
    chat_watcher = await open_socket("watcher", tenant, 0, namespace="/chat")
    outsider = await open_socket("outsider", tenant, 1, namespace="/chat")
    await eventually(lambda: _equals(active_ids(watcher), ["outsider", "watcher"]), what="watcher and outsider active")
    tabs = [
        await open_socket("ana", tenant, 0),
        await open_socket("ana", tenant, 0),
        await open_socket("ana", tenant, 1),
    ]
    joined = await watcher.wait_for("user-connected", about("ana"))
    assert joined["activeUsersCount"] == 3 and joined["user"]["tenantId"] == tenant
    conectado = await watcher_es.wait_for("usuario_conectado", lambda e: e["usuarioId"] == "ana")
    assert conectado["timestamp"]
    await eventually(lambda: _equals(active_ids(watcher), ["ana", "outsider", "watcher"]), what="ana active")

    await tabs[0].close()
    await tabs[2].close()  # the only tab on replica 1
    await asyncio.sleep(2.5)  # longer than the reconnect grace: she must still be online
    for sock in (watcher, tabs[1]):
        assert await active_ids(sock) == ["ana", "outsider", "watcher"]
    assert watcher.received("user-disconnected") == []

    await tabs[1].close()
    left = await watcher.wait_for("user-disconnected", about("ana"), timeout=REAP_SECONDS)
    assert left["activeUsersCount"] == 2
    gone = await watcher_es.wait_for("usuario_desconectado", lambda e: e["usuarioId"] == "ana")
    assert gone["ultimaConexion"]
    await watcher_es.wait_for("estado_usuario_cambiado", lambda e: e["usuarioId"] == "ana" and not e["conectado"])
    states = [e for e in watcher_es.received("estado_usuario_cambiado") if e["usuarioId"] == "ana"]
    assert [(e["conectado"], e["estado"]) for e in states] == [(True, "online"), (False, "offline")]
    await asyncio.sleep(0.5)
    assert len([e for e in watcher.received("user-connected") if e["user"]["userId"] == "ana"]) == 1
    assert len(watcher.received("user-disconnected")) == 1
    # one dialect per socket
    assert watcher.received("usuario_conectado") == [] and watcher.received("estado_usuario_cambiado") == []
    assert watcher_es.received("user-connected") == [] and watcher_es.received("user-disconnected") == []
    assert await active_ids(watcher) == ["outsider", "watcher"]
    seen = [(e["userId"], e["status"]) for e in chat_watcher.received("user_presence") if e["userId"] == "ana"]
    assert seen == [("ana", "online"), ("ana", "offline")]
    assert [e for e in outsider.received("user_presence") if e["userId"] == "ana"] == []


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return (await value) == expected


async def test_stats_and_active_users_are_the_same_on_both_replicas(open_socket, tenant, pstack: Stack, mint):
    await open_socket("adm", tenant, 0, "ADMIN")
    await open_socket("ag1", tenant, 1, "agent")
    a = await open_socket("ag2", tenant, 0, "agent")
    b = await open_socket("ag2", tenant, 1, "agent")
    visitor = await open_socket("v1", tenant, 0, "visitor")
    await open_socket("v1", tenant, 1, "visitor")
    await open_socket("intruder", "other-" + tenant, 1, "agent")  # another tenant: never counted
    await eventually(lambda: _equals(active_ids(b), ["adm", "ag1", "ag2", "v1"]), what="4 active users")

    async def all_sockets_counted() -> bool:
        return (await a.call("get-users-stats"))["totalSockets"] == 6

    await eventually(all_sockets_counted, what="6 sockets")

    stats = [await s.call("get-users-stats") for s in (a, b)]
    for s in stats:
        assert s["success"] is True
        assert s["totalUsers"] == 4 and s["totalSockets"] == 6
        assert s["usersByRole"] == {"ADMIN": 1, "agent": 2, "visitor": 1}  # as the token spelled it
        assert sorted(c["userId"] for c in s["connectionTimes"]) == ["adm", "ag1", "ag2", "v1"]
    # a visitor with no chat sees nobody's presence: the tenant's totals, but no one named
    assert (await visitor.call("get-active-users"))["users"] == []
    theirs = await visitor.call("get-users-stats")
    assert theirs["totalUsers"] == 4 and theirs["connectionTimes"] == []
    assert (await b.wait_for("users-stats"))["totalUsers"] == 4
    assert (await a.call("get-active-users"))["count"] == 4

    token = mint("adm", "ADMIN", tenant=tenant)
    rest = []
    for url in pstack.gateway_urls:
        async with RelayClient(url, token=token) as client:
            rest.append(await client.get("/websocket/users-stats"))
            users = await client.get("/websocket/active-users")
            assert users["count"] == 4 and users["stats"]["totalUsers"] == 4
            v1 = next(u for u in users["users"] if u["userId"] == "v1")
            assert v1["socketCount"] == 2 and v1["status"] == "online" and v1["connectedAt"]
            estadisticas = await client.get("/api/mensajeria/estadisticas")
            assert estadisticas["usuariosConectados"] == 4 and estadisticas["totalSockets"] == 6
    assert [r["usersByRole"] for r in rest] == [stats[0]["usersByRole"]] * 2


async def test_private_message_reaches_every_tab_on_the_other_replica_and_offline_is_an_error(open_socket, tenant):
    ana = await open_socket("ana", tenant, 0)
    bo_tabs = [await open_socket("bo", tenant, 1), await open_socket("bo", tenant, 0)]
    other = await open_socket("bo", "x-" + tenant, 1)  # same user id, another tenant
    await eventually(lambda: _equals(active_ids(ana), ["ana", "bo"]), what="bo online")

    ack = await ana.call("send-message", {"message": "psst", "to": "bo"})
    assert ack["success"] is True and ack["type"] == "private"
    for tab in bo_tabs:
        got = await tab.wait_for("private-message")
        assert got["from"]["userId"] == "ana" and got["message"] == "psst" and got["timestamp"]

    refused = await ana.call("send-message", {"message": "hello?", "to": "nobody-home"})
    assert refused["success"] is False and refused["error"]["code"] == "NOT_FOUND"
    error = await ana.wait_for("error")
    assert "not online" in error["message"]

    ack = await bo_tabs[0].call("send-message", {"message": "hi all"})
    assert ack["success"] is True
    for sock in (ana, *bo_tabs):
        assert (await sock.wait_for("broadcast-message"))["message"] == "hi all"
    bad = await ana.call("send-message", {"message": ""})
    assert bad["success"] is False and bad["error"]["code"] == "VALIDATION_ERROR"
    await asyncio.sleep(0.5)
    assert other.received("private-message") == [] and other.received("broadcast-message") == []


async def test_role_notifications_reach_only_that_role_in_that_tenant(open_socket, tenant, pstack: Stack, mint):
    agent_a = await open_socket("ag-a", tenant, 0, "agent")
    agent_b = await open_socket("ag-b", tenant, 1, "Agent")
    visitor = await open_socket("vis", tenant, 1, "visitor")
    foreign_agent = await open_socket("ag-x", "f-" + tenant, 1, "agent")
    await eventually(lambda: _equals(active_ids(agent_a), ["ag-a", "ag-b", "vis"]), what="all online")

    admin = RelayClient(pstack.gateway_urls[1], token=mint("boss", "ADMIN", tenant=tenant))
    pleb = RelayClient(pstack.gateway_urls[0], token=mint("pleb", "agent", tenant=tenant))
    try:
        sent = await admin.post("/websocket/send-to-role", {"role": "AGENT", "message": "stand-up", "type": "info"})
        assert sent["success"] is True
        for sock in (agent_a, agent_b):
            got = await sock.wait_for("role-notification")
            assert got["targetRole"] == "AGENT" and got["message"] == "stand-up" and got["from"]["userId"] == "boss"

        await admin.post("/websocket/send-notification", {"userId": "vis", "message": "just you", "type": "warning"})
        note = await visitor.wait_for("notification")
        assert note["type"] == "warning" and note["message"] == "just you"
        offline = await admin.request(
            "POST", "/websocket/send-notification", {"userId": "ghost", "message": "x"}, expect=404
        )
        assert offline["error"]["code"] == "NOT_FOUND"

        await admin.post("/websocket/broadcast", {"message": "maintenance at 5", "type": "info"})
        for sock in (agent_a, agent_b, visitor):
            assert (await sock.wait_for("broadcast-notification"))["message"] == "maintenance at 5"

        denied = await pleb.request("POST", "/websocket/broadcast", {"message": "me too"}, expect=403)
        assert denied["error"]["code"] == "PERMISSION_DENIED"
        invalid = await admin.request("POST", "/websocket/send-to-role", {"message": "no role"}, expect=400)
        assert invalid["error"]["code"] == "VALIDATION_ERROR"
        assert (await pleb.get("/api/mensajeria/test"))["success"] is True

        await asyncio.sleep(0.5)
        assert visitor.received("role-notification") == []
        assert agent_a.received("notification") == [] and len(visitor.received("broadcast-notification")) == 1
        for event in ("role-notification", "broadcast-notification", "notification"):
            assert foreign_agent.received(event) == []
    finally:
        await admin.close()
        await pleb.close()


async def test_free_rooms_work_across_replicas_and_refuse_reserved_or_bad_names(open_socket, tenant):
    a = await open_socket("ra", tenant, 0)
    b = await open_socket("rb", tenant, 1)
    stranger = await open_socket("rc", "s-" + tenant, 1)  # same room name, other tenant

    for name in ("chat:123", "Channel:9", "thread:1", "user:rb", "restaurant:r1", "tenant:all"):
        ack = await a.call("join-room", {"room": name})
        assert ack["success"] is False and ack["error"]["code"] == "PERMISSION_DENIED", name
    for bad in ("", "../etc", "a" * 65, "room:general", "x|y", {"nested": 1}):
        ack = await a.call("join-room", {"room": bad})
        assert ack["success"] is False and ack["error"]["code"] == "VALIDATION_ERROR", bad
    outsider = await a.call("room-message", {"room": "general", "message": "hi"})
    assert outsider["success"] is False and outsider["error"]["code"] == "PERMISSION_DENIED"

    for sock in (a, b, stranger):
        assert (await sock.call("join-room", {"room": "general"}))["success"] is True
        assert (await sock.wait_for("joined-room"))["room"] == "general"
    seen = await a.wait_for("user-joined-room", lambda e: e["user"]["userId"] == "rb")
    assert seen["room"] == "general"
    assert (await a.call("room-message", {"room": "general", "message": "hello room"}))["success"] is True
    for sock in (a, b):
        got = await sock.wait_for("room-message")
        assert got == {**got, "room": "general", "message": "hello room"} and got["from"]["userId"] == "ra"

    assert (await b.call("leave-room", {"room": "general"}))["success"] is True
    await a.wait_for("user-left-room", lambda e: e["user"]["userId"] == "rb")
    await a.call("room-message", {"room": "general", "message": "second"})
    await a.wait_for("room-message", count=2)
    await asyncio.sleep(0.5)
    assert len(b.received("room-message")) == 1
    assert stranger.received("room-message") == [] and stranger.received("user-joined-room") == []


async def test_away_by_choice_is_announced_and_listed(open_socket, tenant):
    watcher = await open_socket("w", tenant, 0, dialect="mensajeria")
    ana = await open_socket("ana", tenant, 1)
    await watcher.wait_for("usuario_conectado", lambda e: e["usuarioId"] == "ana")
    ack = await ana.call("presence:set", {"status": "away"})
    assert ack["success"] is True and ack["status"] == "away"
    change = await watcher.wait_for(
        "estado_usuario_cambiado", lambda e: e["usuarioId"] == "ana" and e["estado"] == "away"
    )
    assert change["conectado"] is True
    listed = (await watcher.call("get-active-users"))["users"]
    assert {u["userId"]: u["status"] for u in listed} == {"w": "online", "ana": "away"}
    bad = await ana.call("presence:set", {"status": "invisible"})
    assert bad["success"] is False and bad["error"]["code"] == "VALIDATION_ERROR"
    assert (await ana.call("presence:set", {"status": "online"}))["status"] == "online"
    await watcher.wait_for("estado_usuario_cambiado", lambda e: e["usuarioId"] == "ana" and e["estado"] == "online")
    assert watcher.received("usuario_desconectado") == []


async def test_relay_emit_reaches_a_user_on_either_replica(open_socket, tenant, pstack: Stack):
    tab_a = await open_socket("eve", tenant, 0, "kitchen")
    tab_b = await open_socket("eve", tenant, 1, "kitchen")
    waiter = await open_socket("wal", tenant, 1, "waiter")
    foreign = await open_socket("eve", "e-" + tenant, 0, "kitchen")
    async with Emitter(AMQP_URL, instance=pstack.config.instance) as emitter:
        await emitter.to_user(tenant, "eve", "order.ready", {"orderId": "o1"})
        for tab in (tab_a, tab_b):
            assert (await tab.wait_for("order.ready")) == {"orderId": "o1"}
        await emitter.to_role(tenant, "KITCHEN", "kitchen-note", {"text": "86 the fish"})
        await emitter.to_tenant(tenant, "announcement", {"text": "closing soon"})
        await emitter.to_everyone("platform", {"text": "upgrade tonight"})
        for tab in (tab_a, tab_b):
            await tab.wait_for("kitchen-note")
        for sock in (tab_a, tab_b, waiter):
            await sock.wait_for("announcement")
        for sock in (tab_a, tab_b, waiter, foreign):
            await sock.wait_for("platform")
        assert (await waiter.call("join-room", {"room": "floor"}))["success"] is True
        await emitter.to_room(tenant, "room:floor", "table-call", {"table": 7})
        assert (await waiter.wait_for("table-call")) == {"table": 7}
    # one-shot publisher for scripts and jobs
    await emit(AMQP_URL, "user", "receipt", {"n": 1}, tenant=tenant, target="wal", instance=pstack.config.instance)
    assert (await waiter.wait_for("receipt")) == {"n": 1}
    await asyncio.sleep(0.5)
    assert waiter.received("kitchen-note") == [] and waiter.received("order.ready") == []
    for event in ("order.ready", "kitchen-note", "announcement"):
        assert foreign.received(event) == []
    assert len(tab_a.received("order.ready")) == 1 and len(tab_b.received("order.ready")) == 1


async def test_metrics_on_every_service(pstack: Stack, open_socket, tenant):
    sock = await open_socket("m", tenant, 0)
    assert (await sock.call("join-room", {"room": "chat:1"}))["success"] is False
    assert (await sock.call("get-active-users"))["success"] is True
    async with httpx.AsyncClient() as http:
        gw = (await http.get(f"{pstack.gateway_urls[0]}/metrics")).text
        for name in (
            "relay_gateway_connections",
            "relay_gateway_events_in_total",
            "relay_gateway_events_out_total",
            "relay_gateway_delivery_seconds_bucket",
            "relay_gateway_rooms",
            "relay_errors_total",
            "relay_gateway_command_seconds_bucket",
        ):
            assert name in gw, name
        for service in ("presence", "message"):
            for name in pstack.instances(service):
                text = (await http.get(f"{pstack.ops_url(name)}/metrics")).text
                assert "relay_command_seconds" in text and "relay_consumer_lag_messages" in text, name
        presence = [(await http.get(f"{pstack.ops_url(n)}/metrics")).text for n in pstack.instances("presence")]
        assert any('type="presence.connect"' in text for text in presence)
        assert all("relay_presence_transitions_total" in text for text in presence)


async def test_reconnecting_to_the_other_replica_within_grace_does_not_flap(open_socket, tenant, pstack: Stack, mint):
    watcher = await open_socket("w", tenant, 0)
    tab = await open_socket("flip", tenant, 1)
    await watcher.wait_for("user-connected", about("flip"))
    await tab.close()
    await open_socket("flip", tenant, 0)  # a reload that lands on the other replica
    await asyncio.sleep(3)
    assert [e for e in watcher.received("user-disconnected") if e["user"]["userId"] == "flip"] == []
    assert await active_ids(watcher) == ["flip", "w"]


async def test_presence_lost_in_redis_is_rebuilt_from_the_replicas(open_socket, tenant, pstack: Stack):
    watcher = await open_socket("w", tenant, 0)
    await open_socket("kept", tenant, 1)
    await eventually(lambda: _equals(active_ids(watcher), ["kept", "w"]), what="two online")
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        # a Redis restart without persistence: every presence key is gone
        keys = [k async for k in redis.scan_iter(f"{pstack.config.instance}:presence:*")]
        await redis.delete(*keys)
    finally:
        await redis.aclose()
    assert await active_ids(watcher) == []
    # the replicas' heartbeats notice the service knows none of their sockets and resync them
    await eventually(lambda: _equals(active_ids(watcher), ["kept", "w"]), timeout=REAP_SECONDS * 2, what="resync")


async def test_presence_service_death_delays_presence_but_loses_nothing(open_socket, tenant, pstack: Stack):
    watcher = await open_socket("w", tenant, 0)
    await eventually(lambda: _equals(active_ids(watcher), ["w"]), what="watcher online")
    pstack.kill("presence")
    late = await open_socket("late", tenant, 1)  # handshakes do not depend on the presence service
    refused = await watcher.call("get-active-users")
    assert refused["success"] is False and refused["error"]["code"] == "UNAVAILABLE"
    pstack.start_service("presence")
    # the connect report waited in the durable queue
    await watcher.wait_for("user-connected", about("late"), timeout=15)
    assert await active_ids(watcher) == ["late", "w"]
    assert late.sid


async def test_sigkilled_replica_leaves_no_ghosts(open_socket, tenant, pstack: Stack):
    watcher = await open_socket("w", tenant, 0)
    ghost = await open_socket("ghost", tenant, 1)
    both = [await open_socket("both", tenant, 0), await open_socket("both", tenant, 1)]
    await eventually(lambda: _equals(active_ids(watcher), ["both", "ghost", "w"]), what="three online")
    assert ghost.sid and both

    pstack.kill("gateway-1")
    killed_at = time.monotonic()
    gone = await watcher.wait_for("user-disconnected", about("ghost"), timeout=REAP_SECONDS + 3)
    assert time.monotonic() - killed_at <= REAP_SECONDS + 1.5
    assert gone["activeUsersCount"] == 2
    assert await active_ids(watcher) == ["both", "w"]
    stats = await watcher.call("get-users-stats")
    assert stats["totalSockets"] == 2  # the dead replica's sockets are gone, "both" keeps her tab on replica 0
    assert [e for e in watcher.received("user-disconnected") if e["user"]["userId"] == "both"] == []

    pstack.start_gateway(1, pstack.config.gateway_ports[1])
    back = await open_socket("ghost", tenant, 1)
    await watcher.wait_for("user-connected", about("ghost"), count=2)
    assert back.sid


async def test_scaling_out_and_draining_a_replica(open_socket, tenant, pstack: Stack, mint):
    """Ops add a third replica under load and later stop it gracefully (SIGTERM): its sockets get
    every event while it runs, and its users are announced offline at once, not after reaping."""
    watcher = await open_socket("w", tenant, 0)
    port = free_port()
    pstack.start_gateway(2, port)
    url = f"http://127.0.0.1:{port}"
    newcomer = RelaySocket(url, auth={"token": mint("newcomer", "member", tenant=tenant)})
    try:
        await newcomer.connect()
        await watcher.wait_for("user-connected", about("newcomer"))
        assert await active_ids(watcher) == ["newcomer", "w"]
        # a tenant broadcast from replica 0 reaches the socket on the new replica
        assert (await watcher.call("send-message", {"message": "hello replica 3"}))["success"] is True
        heard = await newcomer.wait_for("broadcast-message")
        assert heard["message"] == "hello replica 3"
        # and the new replica answers the same stats as the old ones
        assert (await newcomer.call("get-active-users"))["count"] == 2

        drained_at = time.monotonic()
        pstack.kill("gateway-2", signal.SIGTERM)
        await watcher.wait_for("user-disconnected", about("newcomer"), timeout=REAP_SECONDS)
        assert time.monotonic() - drained_at < REAP_SECONDS - 1  # said goodbye, not reaped
        assert await active_ids(watcher) == ["w"]
    finally:
        await newcomer.close()
