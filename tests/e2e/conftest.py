"""A whole Relay for end-to-end tests: embedded MongoDB-wire server, two instances of every service,
two gateway replicas."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from relay_devstack import Stack, StackConfig
from relay_devstack.stack import free_port
from relay_sdk import RelayClient, RelaySocket

from tests.conftest import SECRET

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def relay_stack(
    instance: str,
    log_dir: Path,
    *,
    env: dict[str, str] | None = None,
    services: tuple[str, ...] | None = None,
    amqp_url: str = AMQP_URL,
    redis_url: str = REDIS_URL,
    mongo_url: str | None = None,
    drop_topology: bool = True,
    service_instances: int = 2,
) -> Iterator[Stack]:
    """A Relay of its own for a test module: two gateway replicas on free ports and two instances of
    every service (so every e2e test runs scaled out), the test JWT secret, the embedded
    MongoDB-wire server unless `mongo_url`; its broker topology is dropped afterwards."""
    config = StackConfig(
        instance=instance,
        gateway_ports=[free_port(), free_port()],
        service_instances=service_instances,
        amqp_url=amqp_url,
        redis_url=redis_url,
        mongo_url=mongo_url,
        log_dir=str(log_dir),
        env={"JWT_SECRET": SECRET, "GATEWAY_DRAIN_SECONDS": "1", **(env or {})},
        drop_topology=drop_topology,
    )
    if services is not None:
        config.services = services
    with Stack(config) as running:
        yield running


@pytest.fixture(scope="session")
def stack(instance: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "LOG_LEVEL": "DEBUG",
        "AUTH_GRACE_SECONDS": "2",
        "MAX_UPLOAD_BYTES": "2097152",
        # the property tests throw many uploads and refreshes from one user; other rules keep their defaults
        "RATE_LIMITS": "upload=300/60s,auth=300/60s",
        "PRESENCE_REAP_SECONDS": "6",
    }
    logs = tmp_path_factory.mktemp("stack-logs")
    with relay_stack(instance, logs, env=env, mongo_url=os.environ.get("MONGO_URL") or None) as running:
        yield running


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


OpenSocket = Callable[..., Awaitable[RelaySocket]]


@asynccontextmanager
async def socket_opener(urls: list[str]) -> AsyncIterator[OpenSocket]:
    """`open(replica, auth, namespace="/", dialect=None)` connects a socket, closed when the block ends;
    `dialect` is the handshake hint (docs/presence.md: presence in that dialect only)."""
    made: list[RelaySocket] = []

    async def open_one(
        replica: int, auth: dict[str, str], namespace: str = "/", dialect: str | None = None
    ) -> RelaySocket:
        sock = RelaySocket(
            urls[replica], namespace=namespace, auth={**auth, **({"dialect": dialect} if dialect else {})}
        )
        await sock.connect()
        made.append(sock)
        return sock

    try:
        yield open_one
    finally:
        for sock in made:
            await sock.close()
