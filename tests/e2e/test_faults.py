"""Invariant 4: what the platform accepted survives a process dying; what it could not accept is
refused fast and, retried with the same clientMessageId, lands exactly once."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import pytest
from relay_devstack import Stack
from relay_sdk import RelayClient
from relay_sdk.client import RelayError

from tests.e2e.conftest import relay_stack
from tests.e2e.outages import delivered_once_in_order

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory):
    instance = f"t-fault-{uuid.uuid4().hex[:8]}"
    logs = tmp_path_factory.mktemp("fault-logs")
    with relay_stack(instance, logs, services=("message",), env={"RPC_TIMEOUT_SECONDS": "1.5"}) as running:
        yield running


async def test_message_service_death_loses_nothing_and_retries_do_not_duplicate(own_stack: Stack, mint):
    visitor = RelayClient(own_stack.gateway_urls[0], token=mint("v-fault", "visitor"))
    agent = RelayClient(own_stack.gateway_urls[1], token=mint("a-fault", "commercial"))
    chat_id = (await visitor.post("/v2/chats", {}, expect=201))["chatId"]
    async with agent.socket() as sock:
        await sock.call("chat:join", {"chatId": chat_id})
        await visitor.post(
            "/v2/messages", {"chatId": chat_id, "content": "before", "clientMessageId": "k0"}, expect=201
        )

        own_stack.kill("message")
        with pytest.raises(RelayError) as down:
            await visitor.post("/v2/messages", {"chatId": chat_id, "content": "during", "clientMessageId": "k1"})
        assert down.value.status == 503 and down.value.code == "UNAVAILABLE"

        own_stack.start_service("message")
        # the caller was told 503, so the command expired unapplied (SPEC §7); the client's retry lands, once
        retried = await visitor.post(
            "/v2/messages", {"chatId": chat_id, "content": "during", "clientMessageId": "k1"}, expect=201
        )
        assert retried["seq"] == 2
        await delivered_once_in_order(sock, visitor, chat_id, ["before", "during"])
    await visitor.close()
    await agent.close()


async def test_gateway_replica_death_loses_no_accepted_message(own_stack: Stack, mint):
    visitor = RelayClient(own_stack.gateway_urls[0], token=mint("v-gw", "visitor"))
    chat_id = (await visitor.post("/v2/chats", {}, expect=201))["chatId"]
    accepted = [
        (await visitor.post("/v2/messages", {"chatId": chat_id, "content": f"m{i}"}, expect=201))["seq"]
        for i in range(3)
    ]
    own_stack.kill("gateway-0")
    survivor = RelayClient(own_stack.gateway_urls[1], token=visitor.token)
    page = await survivor.history(chat_id)
    assert [m["seq"] for m in page["messages"]] == accepted == [1, 2, 3]
    own_stack.start_gateway(0, own_stack.config.gateway_ports[0])
    assert (await visitor.history(chat_id))["messages"][-1]["seq"] == 3
    await visitor.close()
    await survivor.close()


async def test_database_outage_answers_unavailable_and_recovers_by_itself(own_stack: Stack, mint):
    """SPEC §7: MongoDB down → requests fail fast with UNAVAILABLE; when it returns, Relay recovers
    without a restart and the client's retry (same clientMessageId) lands exactly once."""
    visitor = RelayClient(own_stack.gateway_urls[0], token=mint("v-db", "visitor"))
    agent = RelayClient(own_stack.gateway_urls[1], token=mint("a-db", "commercial"))
    chat_id = (await visitor.post("/v2/chats", {}, expect=201))["chatId"]
    async with agent.socket() as sock:
        await sock.call("chat:join", {"chatId": chat_id})
        await visitor.post(
            "/v2/messages", {"chatId": chat_id, "content": "before", "clientMessageId": "d0"}, expect=201
        )

        own_stack.kill("mongo", signal.SIGTERM)
        started = time.monotonic()
        with pytest.raises(RelayError) as down:
            await visitor.post("/v2/messages", {"chatId": chat_id, "content": "during", "clientMessageId": "d1"})
        assert down.value.status == 503 and down.value.code == "UNAVAILABLE"
        assert time.monotonic() - started < 5

        own_stack.start_mongo()
        deadline = time.monotonic() + 30
        while True:  # the client retries, as it was told to
            try:
                retried = await visitor.post(
                    "/v2/messages", {"chatId": chat_id, "content": "during", "clientMessageId": "d1"}, expect=201
                )
                break
            except RelayError as exc:
                assert exc.code == "UNAVAILABLE" and time.monotonic() < deadline, exc
                await asyncio.sleep(0.5)
        assert retried["seq"] == 2
        await delivered_once_in_order(sock, visitor, chat_id, ["before", "during"])
    await visitor.close()
    await agent.close()
