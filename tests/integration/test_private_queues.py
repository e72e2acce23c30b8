"""A process's private queues (RPC replies, roll call, a gateway's event delivery) after a reconnect
whose old connection lingers, against the real RabbitMQ through a TCP proxy that cuts the wire.

The proxy drops the process's side of its connection but keeps the broker's side open, so the broker
still holds the old connection and the exclusive queues it owns, under their old names, until the test
lets them go: then the broker deletes the old names under the process's feet. This is the essence of a
cluster node loss (relay_broker.private_queues): the survivors delete the lost node's transient queues
by name some time after the process has declared its queues again. A queue declared again under its
old name is refused while the old owner holds it (RESOURCE_LOCKED), and on a cluster loses its record
to the cleanup; under a fresh name it is neither."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiormq
import pytest
import socketio
from relay_broker import Broker, RpcClient, serve_commands
from relay_broker.lanes import partition_of
from relay_broker.rollcall import RollCall
from relay_contracts import Envelope, ErrorCode, RelayError
from relay_contracts.envelope import Actor
from relay_contracts.routing import event_key, interest_pattern
from relay_gateway.delivery import EventDelivery

from tests.integration.amqp_proxy import LingeringProxy
from tests.waiting import until


def command(type_: str, **data: Any) -> Envelope:
    return Envelope(type=type_, tenant="acme", correlationId="corr-pq", actor=Actor(userId="u1"), data=data)


def other_lane(than: Envelope, partitions: int) -> str:
    """A conversation whose commands travel in another lane than `than` (a lane handles one at a time)."""
    return next(
        c
        for n in range(100)
        if partition_of(command("x", conversationId=(c := f"c{n}")), partitions) != partition_of(than, partitions)
    )


async def exists(broker: Broker, name: str) -> bool:
    assert broker.connection is not None
    probe = await broker.connection.channel()  # a failed passive declare closes its channel
    try:
        await probe.declare_queue(name, passive=True, robust=False)
        return True
    except aiormq.exceptions.ChannelLockedResource:
        return True  # another connection's exclusive queue
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not probe.is_closed:
            await probe.close()


async def eventually(attempt: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await attempt()
        except RelayError as exc:
            assert time.monotonic() < deadline, f"{what}: still {exc.code} after {timeout} s"
        await asyncio.sleep(0.1)


async def test_private_queues_take_fresh_names_and_serve_on_after_a_reconnect(broker: Broker, proxy: LingeringProxy):
    slow_started, slow_may_answer = asyncio.Event(), asyncio.Event()

    async def echo(env: Envelope) -> dict[str, Any]:
        return {"echo": env.data["text"]}

    async def slow(env: Envelope) -> dict[str, Any]:
        slow_started.set()
        await slow_may_answer.wait()
        return {"late": True}

    await serve_commands(broker, "message", ["test.#"], {"test.echo": echo, "test.slow": slow})
    slow_command = command("test.slow", conversationId="slow")
    lane = other_lane(slow_command, broker.topology.partitions)  # echoes are not held up behind it
    process = Broker(f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.2", broker.topology)
    await process.connect()
    delivery: EventDelivery | None = None
    rollcalls: list[RollCall] = []
    try:
        rpc = RpcClient(process, timeout=2)
        await rpc.start()
        delivered: list[str] = []
        delivery = EventDelivery(socketio.AsyncServer(async_mode="asgi"), process, "gw-pq", {})

        async def record(envelope: Envelope) -> None:
            delivered.append(envelope.data["n"])

        delivery.listeners.append(record)
        await delivery.start()
        await delivery.interest.add("sid-1", interest_pattern("acme", "conv", "c1"))
        views: list[list[str]] = []

        async def seen(view: list[str]) -> None:
            views.append(view)

        rollcalls.append(RollCall(process, "pq", "me", seen, every=0.2))
        await rollcalls[0].start()

        assert await rpc.call(command("test.echo", conversationId=lane, text="before")) == {"echo": "before"}
        await broker.publish_event(event_key("acme", "conv", "c1", "message.created"), command("x", n="before"))
        await until(lambda: delivered == ["before"], what="event before the cut")
        assert rpc._queue is not None and delivery.queue_name is not None
        old_names = [rpc._queue.name, delivery.queue_name]
        assert old_names[1].startswith(f"{broker.topology.prefix}.gateway.gw-pq.")

        in_flight = asyncio.create_task(rpc.call(slow_command))
        await asyncio.wait_for(slow_started.wait(), 5)
        proxy.strand()  # the process reconnects; the broker still holds its old connection and queues

        # the process serves again while its old queues still stand, owned by the old connection
        assert await eventually(
            lambda: rpc.call(command("test.echo", conversationId=lane, text="after"), timeout=1),
            15,
            "rpc after the reconnect",
        ) == {"echo": "after"}
        # the event queue is on a connection of its own (relay_broker.queue_stream), restored on its own
        await until(lambda: delivery is not None and delivery.alive, 15, "the event stream back")
        new_names = [rpc._queue.name, delivery.queue_name]
        assert all(new != old for new, old in zip(new_names, old_names, strict=True)), (old_names, new_names)
        assert all([await exists(broker, name) for name in old_names])
        slow_may_answer.set()  # its reply goes to the old reply queue: the caller times out, it does not hang
        with pytest.raises(RelayError) as unanswered:
            await asyncio.wait_for(in_flight, 10)
        assert unanswered.value.code == ErrorCode.UNAVAILABLE

        proxy.release()  # the broker drops the old connection: the old names are deleted under the process
        deadline = time.monotonic() + 10
        while any([await exists(broker, name) for name in old_names]):
            assert time.monotonic() < deadline, "the old queues outlived their connection"
            await asyncio.sleep(0.1)

        assert all([await exists(broker, name) for name in new_names])
        assert await rpc.call(command("test.echo", conversationId=lane, text="later")) == {"echo": "later"}
        # the delivery queue's bindings moved with it: an event for its interest still reaches it
        await broker.publish_event(event_key("acme", "conv", "c1", "message.created"), command("x", n="later"))
        await until(lambda: delivered[-1:] == ["later"], what="event after the old queue was deleted")
        # and the roll call still hears the others through its new queue
        rollcalls.append(RollCall(broker, "pq", "peer", seen, every=0.2))
        await rollcalls[1].start()
        await until(lambda: "peer" in rollcalls[0].members, what="the roll call hears a new member")
    finally:
        for rollcall in rollcalls:
            await rollcall.leave()
        if delivery is not None:
            await delivery.close()
        await process.close()


async def test_a_call_whose_reply_queue_a_reconnect_replaced_settles_without_waiting_for_its_reply(
    broker: Broker, proxy: LingeringProxy
):
    """A command sent before a connection loss and handled after it answers to the old reply queue: that reply
    can never come. Its handler claimed it `applied`, so the caller may not say UNAVAILABLE; instead of waiting
    `claimed_wait` for nothing it answers at once that the outcome is unknown (retry with the same key)."""
    from relay_contracts.claims import MemoryClaims, Want

    claims = MemoryClaims()
    taken, may_answer = asyncio.Event(), asyncio.Event()

    async def slow(env: Envelope) -> dict[str, Any]:
        assert await claims.claim([Want(env.id, start=True)]) == [True]  # as a handler does before its write
        taken.set()
        await may_answer.wait()
        return {"late": True}

    await serve_commands(broker, "message", ["test.#"], {"test.slow": slow}, claims=claims)
    process = Broker(f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.2", broker.topology)
    await process.connect()
    try:
        rpc = RpcClient(process, timeout=1, claims=claims, claimed_wait=20)
        await rpc.start()
        in_flight = asyncio.create_task(rpc.call(command("test.slow", conversationId="c1")))
        await asyncio.wait_for(taken.wait(), 5)
        proxy.strand()
        started = time.monotonic()
        with pytest.raises(RelayError) as unknown:
            await asyncio.wait_for(in_flight, 10)
        assert unknown.value.code == ErrorCode.INTERNAL and unknown.value.details.get("outcome") == "unknown"
        assert time.monotonic() - started < 10  # not claimed_wait (20 s)
    finally:
        may_answer.set()
        await process.close()
