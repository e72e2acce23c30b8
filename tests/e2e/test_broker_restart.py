"""Invariant 4 for RabbitMQ: a stack on its own broker node, which is stopped and started again.
While it is down, posts fail fast with UNAVAILABLE and replicas report unready; when it returns,
every process reconnects by itself, the replicas' event queues and bindings come back, and the
client's retry lands exactly once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from relay_devstack import Stack
from relay_sdk import RelayClient
from relay_sdk.client import RelayError

from tests.e2e.conftest import relay_stack
from tests.e2e.outages import delivered_once_in_order, wait_readiness
from tests.e2e.rabbit import CAN_RUN, WHY_NOT, PrivateRabbit

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not CAN_RUN, reason=WHY_NOT)]


@pytest.fixture(scope="module")
def broker_stack(tmp_path_factory) -> Iterator[tuple[Stack, PrivateRabbit]]:
    rabbit = PrivateRabbit()
    rabbit.start()
    instance, logs = f"t-amqp-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("broker-restart-logs")
    try:
        # the private broker goes away with its data: no topology to drop
        with relay_stack(
            instance,
            logs,
            services=("message",),
            amqp_url=rabbit.url,
            env={"RPC_TIMEOUT_SECONDS": "2"},
            drop_topology=False,
        ) as running:
            yield running, rabbit
    finally:
        rabbit.remove()


async def test_broker_restart_fails_fast_then_everything_recovers(broker_stack, mint):
    stack, rabbit = broker_stack
    visitor = RelayClient(stack.gateway_urls[0], token=mint("v-amqp", "visitor"))
    agent = RelayClient(stack.gateway_urls[1], token=mint("a-amqp", "commercial"))
    chat_id = (await visitor.open_chat())["chatId"]
    async with agent.socket() as sock:
        await sock.join(chat_id)
        await visitor.post(
            "/v2/messages", {"chatId": chat_id, "content": "before", "clientMessageId": "b0"}, expect=201
        )
        await sock.wait_for("message:new")

        rabbit.stop()
        started = time.monotonic()
        with pytest.raises(RelayError) as down:
            await visitor.post("/v2/messages", {"chatId": chat_id, "content": "during", "clientMessageId": "b1"})
        assert down.value.status == 503 and down.value.code == "UNAVAILABLE"
        assert time.monotonic() - started < 5
        await wait_readiness(stack.gateway_urls, ready_now=False, timeout=15, what="a replica stayed ready")

        rabbit.start()
        everyone = [*stack.gateway_urls, *(stack.ops_url(name) for name in stack.instances("message"))]
        await wait_readiness(everyone, ready_now=True, timeout=60, what="processes did not recover")

        retried = await visitor.post(
            "/v2/messages", {"chatId": chat_id, "content": "during", "clientMessageId": "b1"}, expect=201
        )
        assert retried["seq"] == 2
        # the agent's replica re-created its event queue and bindings: the event arrives, once
        await delivered_once_in_order(sock, visitor, chat_id, ["before", "during"])
    await visitor.close()
    await agent.close()
