"""Invariant 4 and SPEC §7 for Redis: a stack on its own Redis server, which is stopped and started
again. While it is down, what needs it fails fast with UNAVAILABLE and the replicas report unready;
when it returns, everything recovers by itself: readiness, REST, and the cross-replica adapter.
A Redis that comes back empty costs the cookie sessions; presence rebuilds itself (docs/redis.md)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from relay_devstack import Stack
from relay_devstack.redis_server import RedisServer
from relay_sdk import RelayClient, RelaySocket
from relay_sdk.client import RelayError

from tests.e2e.conftest import relay_stack
from tests.e2e.outages import wait_active, wait_readiness

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def redis_stack(tmp_path_factory) -> Iterator[tuple[Stack, RedisServer]]:
    redis = RedisServer()
    redis.start()
    instance = f"t-redis-{uuid.uuid4().hex[:8]}"
    logs = tmp_path_factory.mktemp("redis-outage-logs")
    try:
        with relay_stack(
            instance, logs, services=("message", "presence"), redis_url=f"redis://127.0.0.1:{redis.port}/0"
        ) as running:
            yield running, redis
    finally:
        redis.remove()


async def test_redis_outage_fails_fast_then_everything_recovers(redis_stack, mint):
    stack, redis = redis_stack
    visitor = RelayClient(stack.gateway_urls[0], token=mint("v-redis", "visitor"))
    agent = RelayClient(stack.gateway_urls[1], token=mint("a-redis", "commercial"))
    chat_id = (await visitor.open_chat())["chatId"]
    async with visitor.socket() as typist, agent.socket() as watcher:
        await typist.join(chat_id)
        await watcher.join(chat_id)

        redis.stop()
        started = time.monotonic()
        with pytest.raises(RelayError) as down:
            await visitor.post("/v2/messages", {"chatId": chat_id, "content": "lost?", "clientMessageId": "r1"})
        assert down.value.status == 503 and down.value.code == "UNAVAILABLE"
        assert time.monotonic() - started < 5
        await wait_readiness(stack.gateway_urls, ready_now=False, timeout=15, what="a replica stayed ready")

        redis.start()  # empty: Redis keeps nothing on disk here
        await wait_readiness(stack.gateway_urls, ready_now=True, timeout=30, what="replicas did not recover")

        # REST works again; the sockets never dropped, and the event reaches the other replica's socket
        sent = await visitor.post(
            "/v2/messages", {"chatId": chat_id, "content": "after", "clientMessageId": "r1"}, expect=201
        )
        got = await watcher.wait_for("message:new")
        assert (got["messageId"], got["content"]) == (sent["messageId"], "after")
        # and the Redis adapter carries typing from replica 0 to replica 1 again
        ack = await typist.call("typing:start", {"chatId": chat_id})
        assert ack["success"] is True, ack
        assert (await watcher.wait_for("user:typing", timeout=10))["userId"] == "v-redis"
    page = await visitor.history(chat_id)
    assert [m["content"] for m in page["messages"]] == ["after"]  # the refused post stored nothing
    await visitor.close()
    await agent.close()


async def test_an_emptied_redis_costs_cookie_sessions_and_presence_rebuilds_itself(redis_stack, mint):
    stack, redis = redis_stack
    async with httpx.AsyncClient(base_url=stack.gateway_urls[0]) as browser:
        created = await browser.post("/v2/visitor/session", json={"tenantId": "cost", "name": "Vera"})
        cookie = {"Cookie": f"visitor_session={created.cookies['visitor_session']}"}
        chat_id = (await browser.post("/v2/chats", json={})).json()["chatId"]
    visitor = RelayClient(stack.gateway_urls[0])
    agent = RelayClient(stack.gateway_urls[1], token=mint("a-cost", "commercial", tenant="cost"))
    member = RelayClient(stack.gateway_urls[0], token=mint("m-cost", "member", tenant="cost"))
    async with agent.socket() as watcher, member.socket():
        await wait_active(watcher, ["a-cost", "m-cost"])

        redis.stop()
        # a cookie is not "unknown" because its store is down: UNAVAILABLE, so the client keeps it
        with pytest.raises(RelayError) as down:
            await visitor.post("/v2/messages", {"chatId": chat_id, "content": "x"}, headers=cookie)
        assert (down.value.status, down.value.code) == (503, "UNAVAILABLE")
        refused: list[dict] = []
        handshake = RelaySocket(stack.gateway_urls[0], headers=cookie)
        handshake.sio.on("connect_error", refused.append, namespace="/")
        with pytest.raises(Exception, match="failed to connect"):
            await handshake.connect(timeout=5)
        assert len(refused) == 1 and "'code': 'UNAVAILABLE'" in str(refused[0]), refused

        redis.start()  # empty
        await wait_readiness(stack.gateway_urls, ready_now=True, timeout=30, what="replicas did not recover")
        # presence: the gateways' heartbeats find the presence service knows none of their sockets, and resync
        rebuilt = await wait_active(watcher, ["a-cost", "m-cost"])
        print(f"presence rebuilt {rebuilt:.1f}s after the replicas were ready again")
        # the cost: server-side sessions are gone; the visitor must start a new session (and chat)
        with pytest.raises(RelayError) as gone:
            await visitor.post("/v2/messages", {"chatId": chat_id, "content": "x"}, headers=cookie)
        assert (gone.value.status, gone.value.code) == (401, "AUTH_REQUIRED")
        # token holders lose nothing
        assert (await member.post("/v2/chats", {}, expect=201))["chatId"]
    for client in (visitor, agent, member):
        await client.close()
