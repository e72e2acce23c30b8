"""A gateway's event queue, acked in batches and, once drained, after a short delay (relay_gateway.event_acks),
against the real RabbitMQ: the acks do leave, few of them, and a connection restored in between never gets the
old connection's delivery tags. The connection is cut by a TCP proxy (amqp_proxy.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import socketio
from prometheus_client import REGISTRY
from relay_broker import Broker
from relay_broker.queue_stream import Link
from relay_contracts import Envelope
from relay_contracts.envelope import Actor
from relay_contracts.routing import event_key, interest_pattern
from relay_gateway import delivery as delivery_module
from relay_gateway.delivery import EventDelivery
from structlog.testing import capture_logs

from tests.integration.amqp_proxy import LingeringProxy
from tests.waiting import until

Ack = tuple[Link, int]  # (the connection it went through, delivery tag); every ack is a multiple one


def event(n: int) -> Envelope:
    return Envelope(type="x", tenant="acme", correlationId="corr-acks", actor=Actor(userId="u1"), data={"n": n})


@pytest.fixture
def acks_sent(monkeypatch: pytest.MonkeyPatch) -> list[Ack]:
    """Every basic.ack the event stream sends (recorded, then sent for real)."""
    sent: list[Ack] = []
    real = Link.ack

    def recording(self: Link, delivery_tag: int) -> None:
        real(self, delivery_tag)
        if not self.is_closed:
            sent.append((self, delivery_tag))

    monkeypatch.setattr(Link, "ack", recording)
    return sent


@pytest.fixture
async def gateway(broker: Broker, proxy: LingeringProxy) -> AsyncIterator[tuple[EventDelivery, list[int]]]:
    """A replica's event delivery through the proxy, prefetch 8 (below the ack batch of 64: the queue only
    keeps flowing if the deferred acks are sent), interested in conversation c1."""
    process = Broker(f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.2", broker.topology, prefetch=8)
    await process.connect()
    delivery = EventDelivery(socketio.AsyncServer(async_mode="asgi"), process, "gw-acks", {})
    delivered: list[int] = []

    async def record(envelope: Envelope) -> None:
        delivered.append(envelope.data["n"])

    delivery.listeners.append(record)
    try:
        await delivery.start()
        await delivery.interest.add("sid-1", interest_pattern("acme", "conv", "c1"))
        yield delivery, delivered
    finally:
        await delivery.close()
        await process.close()


async def publish(broker: Broker, numbers: range) -> None:
    for n in numbers:
        await broker.publish_event(event_key("acme", "conv", "c1", "message.created"), event(n))


def duplicates_dropped() -> float:
    return REGISTRY.get_sample_value("relay_gateway_duplicate_events_total") or 0.0


async def test_a_drained_queue_is_acked_after_a_short_delay_with_one_ack_for_many_events(
    broker: Broker, gateway: tuple[EventDelivery, list[int]], acks_sent: list[Ack]
) -> None:
    _, delivered = gateway
    await publish(broker, range(30))
    # 30 events through a prefetch of 8: the broker sends more only as acks come back
    await until(lambda: delivered == list(range(30)), what="every event, in order")
    await until(lambda: bool(acks_sent) and acks_sent[-1][1] == 30, what="the last event acked")
    assert len(acks_sent) < 30 / 2  # acks cover several events each (basic.ack multiple)
    tags = [tag for _, tag in acks_sent]
    assert tags == sorted(set(tags))  # each ack moves on: none repeats or goes back (that fails the channel)


@pytest.fixture
def slow_acks(monkeypatch: pytest.MonkeyPatch) -> float:
    """A drained queue's ack waits 3 s (read when the consumer starts): time to cut the wire before it."""
    monkeypatch.setattr(delivery_module, "ACK_DELAY_SECONDS", 3.0)
    return 3.0


async def test_a_channel_restored_before_its_deferred_ack_never_gets_the_old_tags(
    broker: Broker,
    proxy: LingeringProxy,
    slow_acks: float,
    gateway: tuple[EventDelivery, list[int]],
    acks_sent: list[Ack],
) -> None:
    delivery, delivered = gateway
    assert delivery.queue_name is not None
    duplicates_before = duplicates_dropped()
    with capture_logs() as logs:
        await publish(broker, range(5))
        await until(lambda: delivered == list(range(5)), what="events before the cut")
        assert acks_sent == []  # tags 1..5 of the first channel wait for their ack
        old_name = delivery.queue_name
        proxy.strand()
        await until(lambda: delivery.queue_name not in (None, old_name), 15, "the restore")
        new_name = delivery.queue_name
        await until(lambda: delivery.alive, 15, "the consumer back")
        await delivery.restored()  # its bindings too: an event published before them would reach nobody
        # the new connection numbers its deliveries 1, 2: an ack of tag 5 there would fail it (unknown tag)
        await publish(broker, range(5, 7))
        await until(lambda: delivered == list(range(7)), what="events after the restore")

        await until(lambda: bool(acks_sent), 2 * slow_acks, "the new connection's deferred ack")
    assert [tag for _, tag in acks_sent] == [2]
    assert not acks_sent[0][0].is_closed  # through the connection that delivered tags 1..2, still open
    dropped = [e for e in logs if e["event"] == "delivery.ack_dropped"]
    assert len(dropped) == 1 and dropped[0]["reason"] in ("connection restored", "connection closed")
    # no failed channel (it would come back under a fresh queue name), and events still flow, each once
    await publish(broker, range(7, 9))
    await until(lambda: delivered == list(range(9)), what="events after the new connection's ack")
    assert delivery.queue_name == new_name
    assert duplicates_dropped() == duplicates_before
