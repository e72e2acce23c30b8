"""A gateway's event stream (relay_broker.queue_stream) against the real RabbitMQ: its own lean connection,
the private queue under a fresh name per connection, bindings kept across reconnects, and the ways a
connection ends — a silent network (heartbeats), the broker cancelling the consumer, a refused binding."""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
import trustme
from relay_broker import Broker
from relay_broker.queue_stream import Closed, PrivateQueueStream, ssl_context
from relay_contracts import Envelope
from relay_contracts.envelope import Actor
from yarl import URL

from tests.integration.amqp_proxy import LingeringProxy
from tests.integration.conftest import AMQP_URL
from tests.waiting import until


def event(n: int, **extra: Any) -> Envelope:
    return Envelope(type="x", tenant="acme", correlationId="corr-qs", actor=Actor(userId="u1"), data={"n": n, **extra})


class Consumer:
    """Consumes a stream the way the gateway does: every delivery in order, acked through its own link."""

    def __init__(self, stream: PrivateQueueStream) -> None:
        self.stream = stream
        self.received: list[Envelope] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for link, tag, body in self.stream.deliveries():
            self.received.append(Envelope.from_bytes(body))
            link.ack(tag)

    @property
    def numbers(self) -> list[int]:
        return [e.data["n"] for e in self.received]

    async def close(self) -> None:
        self._task.cancel()
        await self.stream.close()


@pytest.fixture
async def open_stream(broker: Broker) -> AsyncIterator[Any]:
    consumers: list[Consumer] = []

    async def open_(url: str, *bindings: tuple[str, str]) -> Consumer:
        stream = PrivateQueueStream(
            url, f"{broker.topology.prefix}.gateway.qs", prefetch=8, connection_name="test-qs", bindings=bindings
        )
        await stream.start()
        consumers.append(Consumer(stream))
        return consumers[-1]

    yield open_
    for consumer in consumers:
        await consumer.close()


async def publish(broker: Broker, key: str, numbers: range, **extra: Any) -> None:
    for n in numbers:
        await broker.publish_event(key, event(n, **extra))


async def test_events_on_every_binding_arrive_in_order_and_an_unbound_key_stops(broker: Broker, open_stream):
    emit = (broker.topology.emit, "*.all.#")
    consumer = await open_stream(AMQP_URL, emit)
    assert consumer.stream.ready and consumer.stream.name.startswith(f"{broker.topology.prefix}.gateway.qs.")
    await consumer.stream.bind((broker.topology.events, "acme.conv.c1.#"))
    await publish(broker, "acme.conv.c1.message.created", range(20))
    await broker.publish(broker.topology.emit, "acme.all.x", event(20), persistent=False, mandatory=False)
    await until(lambda: consumer.numbers == list(range(21)), what="every event, in order")
    # a body larger than RabbitMQ's frame size (128 KiB) arrives in several frames, whole
    await publish(broker, "acme.conv.c1.message.created", range(21, 22), blob="é" * 200_000)
    await until(lambda: consumer.numbers[-1:] == [21], what="the big event")
    assert consumer.received[-1].data["blob"] == "é" * 200_000
    await consumer.stream.unbind((broker.topology.events, "acme.conv.c1.#"))
    await publish(broker, "acme.conv.c1.message.created", range(22, 23))
    await broker.publish(broker.topology.emit, "acme.all.x", event(23), persistent=False, mandatory=False)
    await until(lambda: consumer.numbers[-1:] == [23], what="the emit after the unbind")
    assert 22 not in consumer.numbers
    assert await consumer.stream.message_count() == 0  # everything was taken (and acked)


async def test_a_silent_connection_is_replaced_after_missed_heartbeats_with_its_bindings(
    broker: Broker, proxy: LingeringProxy, open_stream
):
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/?heartbeat=1&reconnect_interval=0.2"
    consumer = await open_stream(url, (broker.topology.events, "acme.conv.c1.#"))
    await publish(broker, "acme.conv.c1.message.created", range(3))
    await until(lambda: consumer.numbers == [0, 1, 2], what="events before the freeze")
    old_name = consumer.stream.name
    proxy.freeze()  # both ends stay open; nothing crosses any more, heartbeats neither
    await until(lambda: not consumer.stream.ready, 10, "the silent connection given up")
    await until(lambda: consumer.stream.ready, 10, "a new connection")
    assert consumer.stream.name != old_name
    await publish(broker, "acme.conv.c1.message.created", range(3, 6))
    await until(lambda: consumer.numbers == list(range(6)), what="events on the new connection, each once")


async def test_an_idle_stream_keeps_its_connection_by_sending_heartbeats(broker: Broker, open_stream):
    # RabbitMQ closes a connection it has heard nothing from for two heartbeat intervals (here 1 s)
    consumer = await open_stream(AMQP_URL + "?heartbeat=1", (broker.topology.events, "acme.conv.c1.#"))
    link = consumer.stream._link
    await asyncio.sleep(4)  # idle: no event, no ack, no bind
    assert consumer.stream.ready and consumer.stream._link is link and not link.is_closed
    await publish(broker, "acme.conv.c1.message.created", range(1))
    await until(lambda: consumer.numbers == [0], what="an event on the same connection")


async def test_a_consumer_the_broker_cancels_comes_back_under_a_fresh_name(broker: Broker, open_stream):
    consumer = await open_stream(AMQP_URL + "?reconnect_interval=0.2", (broker.topology.events, "acme.conv.c1.#"))
    old_name = consumer.stream.name
    # an operator deletes the queue: RabbitMQ cancels its consumer (consumer_cancel_notify)
    deleted = await asyncio.to_thread(
        subprocess.run, ["rabbitmqctl", "delete_queue", old_name], capture_output=True, text=True, timeout=60
    )
    assert deleted.returncode == 0, deleted.stderr
    await until(lambda: consumer.stream.ready and consumer.stream.name != old_name, 15, "the stream back")
    await publish(broker, "acme.conv.c1.message.created", range(2))
    await until(lambda: consumer.numbers == [0, 1], what="events through the new queue")


async def test_a_binding_the_broker_refuses_raises_and_the_stream_carries_on_without_it(broker: Broker, open_stream):
    consumer = await open_stream(AMQP_URL + "?reconnect_interval=0.2", (broker.topology.events, "acme.conv.c1.#"))
    with pytest.raises(Closed) as refused:
        await consumer.stream.bind((f"{broker.topology.prefix}.no-such-exchange", "acme.#"))
    assert "404" in refused.value.reason
    assert consumer.stream.bindings == [(broker.topology.events, "acme.conv.c1.#")]
    await until(lambda: consumer.stream.ready, 15, "the stream back without the refused binding")
    await publish(broker, "acme.conv.c1.message.created", range(2))
    await until(lambda: consumer.numbers == [0, 1], what="events on the kept binding")


async def test_no_broker_to_reach_fails_start_quickly() -> None:
    stream = PrivateQueueStream("amqp://guest:guest@127.0.0.1:1/", "qs-nobody", prefetch=8, connection_name="t")
    with pytest.raises(OSError):
        await asyncio.wait_for(stream.start(), 5)


def test_amqps_urls_get_a_tls_context_with_aio_pikas_query_options() -> None:
    assert ssl_context(URL("amqp://h/")) is None
    verified = ssl_context(URL("amqps://h/"))
    assert verified is not None and verified.check_hostname
    unverified = ssl_context(URL("amqps://h/?no_verify_ssl=1"))
    assert unverified is not None and not unverified.check_hostname


def test_a_ca_given_inline_as_cadata_is_trusted() -> None:
    """aio-pika's `cadata`: base64 of the CA's DER certificate, in the URL (no file to mount)."""
    ca = trustme.CA()
    der = ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())
    query = urlencode({"cadata": base64.b64encode(der).decode()})
    context = ssl_context(URL(f"amqps://h/?{query}"))
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    assert der in context.get_ca_certs(binary_form=True)
