"""A throwaway stack leaves nothing in the shared Redis: its keys go at stop, other instances' stay."""

from __future__ import annotations

import uuid

import redis
from relay_devstack.stack import drop_keys

from tests.e2e.conftest import REDIS_URL


def test_drop_keys_deletes_only_the_instances_keys() -> None:
    mine, other = f"t-drop-{uuid.uuid4().hex[:8]}", f"t-keep-{uuid.uuid4().hex[:8]}"
    with redis.Redis.from_url(REDIS_URL) as r:
        try:
            # more than one SCAN page and one delete batch
            with r.pipeline(transaction=False) as pipe:
                for i in range(2500):
                    pipe.set(f"{mine}:presence:user:{i}", "x", ex=600)
                pipe.set(f"{other}:presence:user:1", "x", ex=600)
                pipe.set(f"{mine}-suffix:presence:user:1", "x", ex=600)  # a longer instance name, not this one
                pipe.execute()

            assert drop_keys(REDIS_URL, mine) == 2500

            assert list(r.scan_iter(f"{mine}:*", count=5000)) == []
            assert r.exists(f"{other}:presence:user:1", f"{mine}-suffix:presence:user:1") == 2
        finally:
            r.delete(f"{other}:presence:user:1", f"{mine}-suffix:presence:user:1")
