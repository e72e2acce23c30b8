"""A Relay of its own for the security tier: two gateway replicas with an explicit CORS origin list,
generous per-user limits (the fuzz sends many requests from few users; the history rule keeps its
default so its test sees it), and a look at what is stored (MongoDB) to prove refusals change nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from relay_devstack import Stack

from tests.e2e.conftest import client_factory, gateways, relay_stack

__all__ = ["client_factory", "gateways"]  # the e2e fixtures, here on this tier's own stack

ALLOWED_ORIGIN = "http://app.relay.test"
GENEROUS = ",".join(
    f"{rule}=5000/10s"
    for rule in ("message", "typing", "join", "sync", "read", "query", "rest_write", "upload", "auth")
)


@pytest.fixture(scope="session")
def stack(instance: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"CORS_ORIGINS": ALLOWED_ORIGIN, "RATE_LIMITS": GENEROUS, "LOG_LEVEL": "INFO"}
    logs = tmp_path_factory.mktemp("security-logs")
    with relay_stack(f"{instance}-sec", logs, env=env, mongo_url=os.environ.get("MONGO_URL") or None) as running:
        yield running


class Storage:
    """Counts of every collection of the stack's database: what a refusal must leave unchanged."""

    def __init__(self, stack: Stack) -> None:
        self.url = stack.mongo_url
        self.database = f"{stack.config.instance}".replace("-", "_")

    async def snapshot(self) -> dict[str, int]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.url, serverSelectionTimeoutMS=5000)
        try:
            db = client[self.database]
            names = sorted(await db.list_collection_names())
            return {name: await db[name].count_documents({}) for name in names}
        finally:
            await client.close()


@pytest.fixture
def storage(stack: Stack) -> Storage:
    return Storage(stack)
