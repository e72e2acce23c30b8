"""Real RabbitMQ, Redis and a MongoDB-wire server (embedded SecantusDB unless MONGO_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from relay_broker import Broker, Topology
from relay_devstack import Stack, StackConfig
from relay_mongo import connect
from yarl import URL

from tests.integration.amqp_proxy import LingeringProxy

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    if os.environ.get("MONGO_URL"):
        yield os.environ["MONGO_URL"]
        return
    with Stack(StackConfig(gateway_ports=[], services=())) as only_mongo:
        yield only_mongo.mongo_url


@pytest.fixture
async def db(mongo_url: str):
    client, database = connect(mongo_url, f"it_{uuid.uuid4().hex[:8]}")
    yield database
    await client.drop_database(database.name)
    await client.close()


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    b = Broker(AMQP_URL, Topology(f"it-{uuid.uuid4().hex[:8]}"), prefetch=8)
    await b.connect()
    yield b
    await b.delete_topology()
    await b.close()


@pytest.fixture
async def proxy() -> AsyncIterator[LingeringProxy]:
    """A TCP proxy to the broker whose connections the test cuts (amqp_proxy.py)."""
    p = LingeringProxy(URL(AMQP_URL))
    await p.start()
    yield p
    await p.close()
