"""What the alert rules read: queue depths sampled from the real RabbitMQ (deploy/observability/)."""

from __future__ import annotations

import asyncio
import time

import aio_pika
from prometheus_client import REGISTRY
from relay_broker import Broker
from relay_broker.lanes import partition_of
from relay_contracts import Envelope
from relay_contracts.envelope import Actor
from relay_ops.metrics import sample_consumer_lag, sample_dead_letters


async def wait_sample(name: str, labels: dict[str, str], expected: float) -> None:
    deadline = time.monotonic() + 10
    while REGISTRY.get_sample_value(name, labels) != expected:
        assert time.monotonic() < deadline, (name, labels, REGISTRY.get_sample_value(name, labels), expected)
        await asyncio.sleep(0.05)


async def test_consumer_lag_is_sampled_fresh_every_time(broker: Broker):
    await broker.declare_service_queues("message", ["test.#"])  # nobody consumes: commands wait
    # three commands about one conversation: one lane
    for n in range(3):
        waiting = Envelope(
            type="test.wait",
            tenant="acme",
            correlationId="c",
            actor=Actor(userId="u"),
            data={"n": n, "conversationId": "c1"},
        )
        await broker.publish_command(waiting)
    lane = partition_of(waiting, broker.topology.partitions)
    queue = await broker.declare_service_queue("message", lane)
    sampler = asyncio.create_task(sample_consumer_lag(broker.connection, "message", [queue.name], every=0.05))
    try:
        labels = {"service": "message", "queue": queue.name}
        await wait_sample("relay_consumer_lag_messages", labels, 3)
        # a robust channel would answer the next passive declares from its cache: 3 for ever
        # take one (a lane is single-active-consumer: consume, basic.get is refused)
        async with queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                break
        await wait_sample("relay_consumer_lag_messages", labels, 2)
    finally:
        sampler.cancel()


async def test_dead_letters_are_sampled_even_after_the_queue_was_deleted(broker: Broker, caplog):
    assert broker.channel is not None
    dlx = await broker.channel.get_exchange(broker.topology.dead_letters)
    for _ in range(2):
        await dlx.publish(aio_pika.Message(b"{}"), routing_key="")
    sampler = asyncio.create_task(sample_dead_letters(broker, every=0.05))
    try:
        await wait_sample("relay_dead_letter_messages", {}, 2)
        # a command taken out of the dead-letter queue (inspected, replayed) shows as it goes
        dead = await broker.channel.declare_queue(broker.topology.dead_letter_queue, passive=True)
        assert await dead.get(no_ack=True, fail=False) is not None
        await wait_sample("relay_dead_letter_messages", {}, 1)
        # the queue deleted by an operator: the failed passive declare closes the probe; sampling carries on
        await broker.channel.queue_delete(broker.topology.dead_letter_queue)
        deadline = time.monotonic() + 10
        while not any("dead-letter sample failed" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the sampler never noticed the missing queue"
            await asyncio.sleep(0.05)
        dead = await broker.channel.declare_queue(broker.topology.dead_letter_queue, durable=True)
        await dead.bind(dlx)
        for _ in range(4):
            await dlx.publish(aio_pika.Message(b"{}"), routing_key="")
        await wait_sample("relay_dead_letter_messages", {}, 4)
    finally:
        sampler.cancel()
