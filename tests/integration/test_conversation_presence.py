"""Connected participants of a conversation in real Redis: across replicas, per tenant, ghosts age out."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from relay_gateway.conversation_presence import STALE_SECONDS, ConversationPresence

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, str]]:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    yield client, prefix
    keys = [k async for k in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_two_replicas_see_each_others_participants_once_per_user_and_per_tenant(redis):
    client, prefix = redis
    replica_a, replica_b = ConversationPresence(client, prefix), ConversationPresence(client, prefix)
    try:
        await replica_a.join("acme", "c1", "ana", "sid-a1")
        await replica_a.join("acme", "c1", "ana", "sid-a2")  # ana's second tab
        await replica_b.join("acme", "c1", "beto", "sid-b1")
        await replica_b.join("globex", "c1", "zoe", "sid-g1")  # same id, another tenant
        assert await replica_a.connected("acme", "c1") == ["ana", "beto"]
        assert await replica_b.connected("globex", "c1") == ["zoe"]
        assert replica_b.joined("sid-b1", "acme", "c1") and not replica_a.joined("sid-b1", "acme", "c1")

        await replica_a.leave("acme", "c1", "sid-a1")
        assert await replica_b.connected("acme", "c1") == ["ana", "beto"]  # the other tab is still there
        await replica_a.leave_all("sid-a2")
        assert await replica_b.connected("acme", "c1") == ["beto"]
    finally:
        await replica_a.close()
        await replica_b.close()


async def test_entries_nobody_vouches_for_age_out(redis):
    client, prefix = redis
    alive = ConversationPresence(client, prefix)
    try:
        await alive.join("acme", "c2", "ana", "sid-1")
        # a replica that died without cleaning up: its last refresh is older than the stale window
        await client.zadd(f"{prefix}:mensajeria:online:acme|c2", {"sid-dead|ghost": time.time() - STALE_SECONDS - 1})
        assert await alive.connected("acme", "c2") == ["ana"]
        assert await client.zscore(f"{prefix}:mensajeria:online:acme|c2", "sid-dead|ghost") is None
    finally:
        await alive.close()
