"""What the alert rules read: queue depths sampled from the real RabbitMQ (deploy/observability/)."""

from __future__ import annotations

import asyncio
import time

import aio_pika
from prometheus_client import REGISTRY
from relay_broker import Broker
from relay_contracts import Envelope
from relay_contracts.envelope import Actor
from relay_ops.metrics import sample_consumer_lag


async def wait_sample(name: str, labels: dict[str, str], expected: float) -> None:
    deadline = time.monotonic() + 10
    while REGISTRY.get_sample_value(name, labels) != expected:
        assert time.monotonic() < deadline, (name, labels, REGISTRY.get_sample_value(name, labels), expected)
        await asyncio.sleep(0.05)


async def test_consumer_lag_and_dead_letters_are_sampled(broker: Broker, caplog):
    queue = await broker.declare_service_queue("message", ["test.#"])  # nobody consumes: commands wait
    for n in range(3):
        waiting = Envelope(type="test.wait", tenant="acme", correlationId="c", actor=Actor(userId="u"), data={"n": n})
        await broker.publish_command(waiting)
    assert broker.channel is not None
    dlx = await broker.channel.get_exchange(broker.topology.dead_letters)
    for _ in range(2):
        await dlx.publish(aio_pika.Message(b"{}"), routing_key="")
    assert broker.connection is not None
    sampler = asyncio.create_task(
        sample_consumer_lag(
            broker.connection, "message", queue.name, dead_letter_queue=broker.topology.dead_letter_queue, every=0.05
        )
    )
    try:
        await wait_sample("relay_consumer_lag_messages", {"service": "message", "queue": queue.name}, 3)
        await wait_sample("relay_dead_letter_messages", {}, 2)
        # a command taken out of the dead-letter queue (inspected, replayed) shows as it goes
        dead = await broker.channel.declare_queue(broker.topology.dead_letter_queue, passive=True)
        assert await dead.get(no_ack=True, fail=False) is not None
        await wait_sample("relay_dead_letter_messages", {}, 1)
        # the queue deleted by an operator: the failed passive declare closes the probe; sampling carries on
        await broker.channel.queue_delete(broker.topology.dead_letter_queue)
        deadline = time.monotonic() + 10
        while not any(broker.topology.dead_letter_queue in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the sampler never noticed the missing queue"
            await asyncio.sleep(0.05)
        dead = await broker.channel.declare_queue(broker.topology.dead_letter_queue, durable=True)
        await dead.bind(dlx)
        for _ in range(4):
            await dlx.publish(aio_pika.Message(b"{}"), routing_key="")
        await wait_sample("relay_dead_letter_messages", {}, 4)
    finally:
        sampler.cancel()
