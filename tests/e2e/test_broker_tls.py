"""RabbitMQ over TLS (`amqps://`), on a private node with a TLS listener whose certificate a test CA signed: the
gateway's event stream (relay_broker.queue_stream, its own TLS connection) and the aio-pika connection every
process publishes on both connect with the URL's `cafile`, an event goes through, and a server the client does
not trust is refused."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from relay_broker import Broker, Topology
from relay_broker.queue_stream import PrivateQueueStream
from relay_contracts import Envelope
from relay_contracts.envelope import Actor

from tests.e2e.rabbit import CAN_RUN, WHY_NOT, PrivateRabbit

pytestmark = pytest.mark.skipif(not CAN_RUN, reason=WHY_NOT)


@pytest.fixture(scope="module")
def tls_rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    rabbit = PrivateRabbit()
    port = rabbit.tls(
        ca.cert_pem.bytes(), b"".join(blob.bytes() for blob in cert.cert_chain_pems), cert.private_key_pem.bytes()
    )
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    try:
        rabbit.start()
        yield port, ca_file
    finally:
        rabbit.remove()


async def test_the_event_stream_and_the_publishing_connection_work_over_tls(tls_rabbit: tuple[int, Path]) -> None:
    port, ca_file = tls_rabbit
    url = f"amqps://guest:guest@127.0.0.1:{port}/?cafile={ca_file}"
    topology = Topology(f"tls-{uuid.uuid4().hex[:8]}")
    broker = Broker(url, topology)
    await broker.connect()
    stream = PrivateQueueStream(
        url, f"{topology.prefix}.gateway.tls", prefetch=8, connection_name="t", bindings=[(topology.events, "acme.#")]
    )
    try:
        await stream.start()
        assert stream.ready
        sent = Envelope(type="x", tenant="acme", correlationId="corr-tls", actor=Actor(userId="u1"), data={"n": 1})
        await broker.publish_event("acme.conv.c1.message.created", sent)
        deliveries = stream.deliveries()
        link, tag, body = await asyncio.wait_for(anext(deliveries), 10)
        assert Envelope.from_bytes(body) == sent
        link.ack(tag)
    finally:
        await stream.close()
        await broker.close()


async def test_a_broker_whose_certificate_the_client_does_not_trust_is_refused(tls_rabbit: tuple[int, Path]) -> None:
    port, _ = tls_rabbit
    stream = PrivateQueueStream(
        f"amqps://guest:guest@127.0.0.1:{port}/", "tls-untrusted", prefetch=8, connection_name="t"
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.wait_for(stream.start(), 10)
