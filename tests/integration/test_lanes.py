"""Command lanes against the real RabbitMQ: instances of a service share the lanes evenly, and a lane
changes hands (an instance leaving or joining) without two instances ever working on it at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from relay_broker import Broker, LaneConsumer, RpcClient, Topology, serve_commands
from relay_contracts import Envelope
from relay_contracts.envelope import Actor

from tests.integration.conftest import AMQP_URL
from tests.waiting import until

PARTITIONS = 4


def command(conversation: str, n: int) -> Envelope:
    return Envelope(
        type="test.step",
        tenant="acme",
        correlationId=f"corr-{conversation}-{n}",
        actor=Actor(userId="u1"),
        data={"conversationId": conversation, "n": n},
    )


@pytest.fixture
async def topology() -> AsyncIterator[Topology]:
    t = Topology(f"it-lanes-{uuid.uuid4().hex[:8]}", partitions=PARTITIONS)
    yield t
    admin = Broker(AMQP_URL, t)
    await admin.connect()
    await admin.delete_topology()
    await admin.close()


class Instances:
    """Processes of one service, each with its own connection, all recording what they handle."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.log: list[tuple[str, str, str, int]] = []  # (instance, "start"|"end", conversation, n)
        self.running: dict[str, tuple[Broker, LaneConsumer]] = {}

    async def start(self, name: str) -> LaneConsumer:
        broker = Broker(AMQP_URL, self.topology, prefetch=8)
        await broker.connect()

        async def step(env: Envelope) -> None:
            conversation, n = env.data["conversationId"], env.data["n"]
            self.log.append((name, "start", conversation, n))
            await asyncio.sleep(0.002 * (n % 5))  # some work, of uneven length
            self.log.append((name, "end", conversation, n))

        consumer = await serve_commands(broker, "message", ["test.#"], {"test.step": step})
        self.running[name] = (broker, consumer)
        return consumer

    async def stop(self, name: str) -> None:
        broker, consumer = self.running.pop(name)
        await consumer.stop()
        await broker.close()

    def lanes(self) -> dict[str, list[int]]:
        return {name: consumer.lanes for name, (_, consumer) in self.running.items()}


async def test_two_instances_share_the_lanes_evenly(topology: Topology):
    instances = Instances(topology)
    try:
        await instances.start("a")
        await until(lambda: instances.lanes()["a"] == list(range(PARTITIONS)), 5, "a alone owns every lane")
        await instances.start("b")

        def balanced() -> bool:
            lanes = instances.lanes()
            return sorted(lanes["a"] + lanes["b"]) == list(range(PARTITIONS)) and len(lanes["a"]) == 2

        await until(balanced, 10, f"lanes not shared evenly: {instances.lanes()}")
    finally:
        for name in list(instances.running):
            await instances.stop(name)


async def test_a_lane_changes_hands_without_overlap_or_reordering(topology: Topology):
    instances = Instances(topology)
    publisher = Broker(AMQP_URL, topology)
    await publisher.connect()
    rpc = RpcClient(publisher)
    conversations = [f"c{i}" for i in range(6)]
    per_conversation = 60
    try:
        await instances.start("a")

        async def traffic() -> None:
            for n in range(per_conversation):
                for conversation in conversations:
                    await rpc.send(command(conversation, n))
                await asyncio.sleep(0.01)

        sending = asyncio.create_task(traffic())
        await until(lambda: len(instances.log) > 60, 10, "a handles nothing")
        await instances.start("b")  # b joins: a hands over half its lanes under traffic
        await until(lambda: any(i == "b" for i, *_ in instances.log), 10, "b never got a lane")
        await instances.stop("a")  # a leaves: b takes the rest
        await instances.start("c")
        await sending
        total = per_conversation * len(conversations)
        await until(lambda: sum(1 for _, what, *_ in instances.log if what == "end") >= total, 20, "commands lost")
    finally:
        for name in list(instances.running):
            await instances.stop(name)
        await publisher.close()

    for conversation in conversations:
        events = [(i, what, n) for i, what, c, n in instances.log if c == conversation]
        starts = [n for _, what, n in events if what == "start"]
        assert starts == list(range(per_conversation)), f"{conversation} handled out of order or twice"
        in_progress: dict[str, int] = {}
        for instance, what, _ in events:
            if what == "start":
                others = [i for i, busy in in_progress.items() if busy and i != instance]
                assert not others, f"{conversation}: {instance} started while {others} still worked on it"
                in_progress[instance] = in_progress.get(instance, 0) + 1
            else:
                in_progress[instance] -= 1
    handled_by = {i for i, *_ in instances.log}
    assert handled_by == {"a", "b", "c"}
