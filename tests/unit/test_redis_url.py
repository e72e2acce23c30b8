"""REDIS_URL names one server or a set of Sentinels; every Redis user in Relay reads it the same way."""

from __future__ import annotations

import pytest
import relay_redis
from redis.asyncio.sentinel import SentinelConnectionPool


async def test_a_plain_url_names_one_server() -> None:
    client = relay_redis.connect("redis://127.0.0.1:6390/2")
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["decode_responses"]) == ("127.0.0.1", 6390, 2, True)
    await client.aclose()


async def test_a_sentinel_url_follows_the_master_its_sentinels_elect() -> None:
    client = relay_redis.connect("redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26380/3/relaymaster")
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "relaymaster"
    assert [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in pool.sentinel_manager.sentinels
    ] == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    assert (pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == (3, "pw")
    await client.aclose()


def test_a_sentinel_url_without_its_service_is_refused() -> None:
    with pytest.raises(ValueError, match="SERVICE"):
        relay_redis.connect("redis+sentinel://10.0.0.1:26379/0")
