"""A whole Relay for end-to-end tests: embedded MongoDB-wire server, services, two gateway replicas."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from relay_broker import Broker, Topology
from relay_devstack import Stack, StackConfig
from relay_devstack.stack import free_port
from relay_sdk import RelayClient

from tests.conftest import SECRET

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


async def _drop_topology(instance: str) -> None:
    broker = Broker(AMQP_URL, Topology(instance))
    await broker.connect()
    await broker.delete_topology()
    await broker.close()


@pytest.fixture(scope="session")
def stack(instance: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("stack-logs")
    config = StackConfig(
        instance=instance,
        gateway_ports=[free_port(), free_port()],
        amqp_url=AMQP_URL,
        redis_url=REDIS_URL,
        mongo_url=os.environ.get("MONGO_URL") or None,
        log_dir=str(logs),
        env={
            "JWT_SECRET": SECRET,
            "LOG_LEVEL": "DEBUG",
            "AUTH_GRACE_SECONDS": "2",
            "MAX_UPLOAD_BYTES": "2097152",
            "PRESENCE_REAP_SECONDS": "6",
        },
    )
    with Stack(config) as running:
        yield running
    asyncio.run(_drop_topology(instance))


@pytest.fixture
def gateways(stack: Stack) -> list[str]:
    return stack.gateway_urls


@pytest.fixture
async def client_factory(stack: Stack) -> AsyncIterator[Callable[[str, int], RelayClient]]:
    made: list[RelayClient] = []

    def make(token: str, replica: int = 0) -> RelayClient:
        client = RelayClient(stack.gateway_urls[replica], token=token)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
