"""Invariant 4 and SPEC §7 for Redis: a stack on its own Redis server, which is stopped and started
again. While it is down, what needs it fails fast with UNAVAILABLE and the replicas report unready;
when it returns, everything recovers by itself: readiness, REST, and the cross-replica adapter."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from relay_devstack import Stack
from relay_devstack.stack import free_port
from relay_sdk import RelayClient
from relay_sdk.client import RelayError

from tests.e2e.conftest import relay_stack
from tests.e2e.outages import wait_readiness

pytestmark = pytest.mark.e2e


class RedisServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout != b"PONG\n":
            assert time.monotonic() < deadline, "private redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def redis_stack(tmp_path_factory) -> Iterator[tuple[Stack, RedisServer]]:
    redis = RedisServer(free_port())
    redis.start()
    instance = f"t-redis-{uuid.uuid4().hex[:8]}"
    logs = tmp_path_factory.mktemp("redis-outage-logs")
    try:
        with relay_stack(
            instance, logs, services=("message",), redis_url=f"redis://127.0.0.1:{redis.port}/0"
        ) as running:
            yield running, redis
    finally:
        redis.stop()


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
