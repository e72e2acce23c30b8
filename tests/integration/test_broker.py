"""The broker layer against the real RabbitMQ."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest
from relay_broker import Broker, RpcClient, serve_commands
from relay_broker.lanes import partition_of
from relay_contracts import Envelope, ErrorCode, RelayError
from relay_contracts.envelope import Actor

from tests.integration.conftest import AMQP_URL


def command(type_: str, **data) -> Envelope:
    return Envelope(type=type_, tenant="acme", correlationId="corr-it", actor=Actor(userId="u1"), data=data)


async def test_request_reply_answers_data_errors_and_times_out(broker: Broker):
    calls: list[Envelope] = []

    async def echo(env: Envelope) -> dict:
        calls.append(env)
        return {"echo": env.data["text"], "correlationId": env.correlationId}

    async def refuse(env: Envelope) -> None:
        raise RelayError(ErrorCode.CONFLICT, "already there", current="CONFIRMED")

    await serve_commands(broker, "message", ["test.#"], {"test.echo": echo, "test.refuse": refuse})
    rpc = RpcClient(broker, timeout=3)
    await rpc.start()

    assert await rpc.call(command("test.echo", text="hola")) == {"echo": "hola", "correlationId": "corr-it"}
    with pytest.raises(RelayError) as refused:
        await rpc.call(command("test.refuse"))
    assert (refused.value.code, refused.value.details) == (ErrorCode.CONFLICT, {"current": "CONFIRMED"})
    with pytest.raises(RelayError) as nobody:
        await rpc.call(command("nobody.listens"), timeout=0.5)
    assert nobody.value.code == ErrorCode.UNAVAILABLE


async def test_a_command_that_keeps_failing_is_dead_lettered_not_lost(broker: Broker):
    attempts = 0

    async def broken(env: Envelope) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("bug")

    await serve_commands(broker, "message", ["test.#"], {"test.broken": broken})
    poison = command("test.broken")
    await broker.publish_command(poison)

    assert broker.channel is not None
    dead = await broker.channel.declare_queue(broker.topology.dead_letter_queue, passive=True)
    message = None
    for _ in range(100):
        message = await dead.get(no_ack=True, fail=False)
        if message is not None:
            break
        await asyncio.sleep(0.1)
    assert message is not None, "poison command never reached the dead-letter queue"
    assert Envelope.from_bytes(message.body).id == poison.id
    assert attempts >= 2  # retried before giving up


async def test_a_dependency_outage_answers_unavailable_at_once_and_applies_nothing_later(broker: Broker):
    """The database is down: a waiting caller hears UNAVAILABLE long before its timeout, and that answer is
    the truth (SPEC §7): the command is dropped, not run again when the database returns. A command nobody
    waits for goes back to the queue and lands once the database is back."""
    attempts: list[tuple[str, float]] = []
    landed = asyncio.Event()

    async def flaky(env: Envelope) -> dict:
        attempts.append((env.data["who"], asyncio.get_running_loop().time()))
        if len(attempts) <= 2:
            raise ConnectionError("database unreachable")
        landed.set()
        return {"stored": True}

    await serve_commands(
        broker,
        "message",
        ["test.#"],
        {"test.flaky": flaky},
        transient=(ConnectionError,),
        transient_backoff_seconds=0.2,
    )
    rpc = RpcClient(broker, timeout=10)
    await rpc.start()
    started = asyncio.get_running_loop().time()
    with pytest.raises(RelayError) as down:
        await rpc.call(command("test.flaky", who="caller"))
    assert down.value.code == ErrorCode.UNAVAILABLE
    assert asyncio.get_running_loop().time() - started < 2  # not the 10 s timeout
    await rpc.send(command("test.flaky", who="fire-and-forget"))
    await asyncio.wait_for(landed.wait(), 10)
    assert [who for who, _ in attempts] == ["caller", "fire-and-forget", "fire-and-forget"]
    assert attempts[2][1] - attempts[1][1] >= 0.2  # backed off between attempts, no hot loop


async def test_a_command_whose_caller_timed_out_is_never_applied(broker: Broker):
    """Nobody consumes while the caller waits: it is answered UNAVAILABLE at its timeout; when a consumer
    comes, the command has expired and its handler never runs."""
    ran: list[Envelope] = []

    async def write(env: Envelope) -> dict:
        ran.append(env)
        return {}

    await broker.declare_service_queues("message", ["test.#"])
    rpc = RpcClient(broker, timeout=0.6, settle=0.2)
    await rpc.start()
    with pytest.raises(RelayError) as down:
        await rpc.call(command("test.write"))
    assert down.value.code == ErrorCode.UNAVAILABLE
    consumer = await serve_commands(broker, "message", ["test.#"], {"test.write": write})
    assert await rpc.call(command("test.write"), timeout=3) == {}  # a fresh command is served
    await consumer.stop()
    assert len(ran) == 1


async def test_calls_beyond_the_in_flight_limit_are_refused_at_once_and_never_sent(broker: Broker):
    await broker.declare_service_queues("message", ["test.#"])
    slow, shed_too = command("test.slow", conversationId="c1"), command("test.shed", conversationId="c1")
    queue = await broker.declare_service_queue("message", partition_of(slow, broker.topology.partitions))
    rpc = RpcClient(broker, timeout=2, max_in_flight=1)
    await rpc.start()
    waiting = asyncio.create_task(rpc.call(slow))  # nobody consumes: it waits its timeout
    await asyncio.sleep(0.2)  # let the first call publish
    with pytest.raises(RelayError) as shed:
        await rpc.call(shed_too)
    assert shed.value.code == ErrorCode.UNAVAILABLE
    sent: list[str] = []  # (a lane has a single active consumer: basic.get is not allowed on it)

    async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        sent.append(Envelope.from_bytes(message.body).type)

    await queue.consume(take, no_ack=True)
    await asyncio.sleep(0.3)  # what was published has arrived by now
    assert sent == ["test.slow"]  # the refused call was never sent
    with pytest.raises(RelayError):
        await waiting


async def test_events_reach_only_queues_bound_to_their_target(broker: Broker):
    from relay_contracts.routing import event_key, interest_pattern

    assert broker.channel is not None
    queue = await broker.channel.declare_queue(exclusive=True, auto_delete=True)
    events = broker.exchanges[broker.topology.events]
    await queue.bind(events, interest_pattern("acme", "conv", "c.1"))
    for tenant, conv in (("acme", "c.1"), ("acme", "c.2"), ("globex", "c.1"), ("acme", "c")):
        await broker.publish_event(event_key(tenant, "conv", conv, "message.created"), command("x", conv=conv))
    got = []
    for _ in range(30):
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            if got:
                break
            await asyncio.sleep(0.05)
            continue
        got.append(Envelope.from_bytes(message.body))
    assert [(e.tenant, e.data["conv"]) for e in got] == [("acme", "c.1")]


async def test_a_nacked_command_channel_is_replaced_once_and_commands_go_on(broker: Broker):
    """RabbitMQ 3.10 can leave a channel nacking every later command to a quorum queue after one nack (a
    leader lost; see `Broker._renew_command_channel`): a nack replaces the command channel, once however
    many commands were nacked together. Here the nack comes from a full queue that rejects publishes (a
    classic one: it refuses the very next publish, where a quorum queue's limit is applied eventually)."""
    assert broker.channel is not None and broker.command_channel is not None
    full = await broker.channel.declare_queue(
        f"{broker.topology.prefix}.full", arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    try:
        await full.bind(broker.exchanges[broker.topology.commands], "*.test.full")
        await broker.publish_command(command("test.full", conversationId="c1"))  # fills it
        nacked = broker.command_channel
        refused = await asyncio.gather(
            *(broker.publish_command(command("test.full", conversationId="c1")) for _ in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(r, aio_pika.exceptions.DeliveryError) for r in refused), refused
        renewed = broker.command_channel
        assert renewed is not None and renewed is not nacked and not renewed.is_closed
        assert nacked.is_closed
        await full.purge()
        await broker.publish_command(command("test.full", conversationId="c1"))  # room again: confirmed
        assert broker.command_channel is renewed
    finally:
        await full.delete(if_unused=False, if_empty=False)


async def test_publish_fails_loudly_when_the_broker_is_gone(broker: Broker):
    assert broker.connection is not None
    await broker.connection.close()
    with pytest.raises((aio_pika.exceptions.AMQPError, RuntimeError, ConnectionError)):
        await broker.publish_command(command("test.echo", text="lost?"))
    await broker.connect()  # fixture teardown needs a live connection


async def test_a_node_that_accepts_but_never_speaks_amqp_is_passed_over(monkeypatch: pytest.MonkeyPatch):
    """A cluster node busy with the loss of another can take the TCP connection and never finish the AMQP
    handshake: the attempt must time out and the process move on to the next node listed, not wait forever."""
    import uuid

    from relay_broker import Topology
    from relay_broker import broker as broker_module

    monkeypatch.setattr(broker_module, "CONNECT_TIMEOUT_SECONDS", 1.0)
    held: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep the connection open, say nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    urls = f"amqp://guest:guest@127.0.0.1:{port}/,{AMQP_URL}"
    b = Broker(urls, Topology(f"it-silent-{uuid.uuid4().hex[:8]}"))
    try:
        async with asyncio.timeout(20):
            await b.connect()
        assert held, "the silent node was tried first"
        assert b.is_connected
        await b.delete_topology()
    finally:
        await b.close()
        for writer in held:
            writer.close()
        server.close()


async def test_an_event_published_while_its_channel_is_being_restored_waits_for_it(
    broker: Broker, proxy, monkeypatch: pytest.MonkeyPatch
):
    """A reconnect restores a process's channels one after another: a handler can be given a command while the
    channel it publishes its events on is not back yet. That publish must wait for the channel, not fail at
    once (redelivered at once, the command would spend its whole delivery limit in milliseconds and be
    dead-lettered, though applied). Here the restore of the process's private queue is held at a gate."""
    from relay_broker.private_queues import PrivateQueue, PrivateQueueChannel
    from relay_contracts.routing import event_key, interest_pattern

    from tests.waiting import until

    gate = asyncio.Event()
    restore = PrivateQueue.restore

    async def held(queue: PrivateQueue, channel: object = None) -> None:
        await gate.wait()
        await restore(queue, channel)

    assert broker.channel is not None
    seen = await broker.channel.declare_queue(exclusive=True, auto_delete=True)
    await seen.bind(broker.exchanges[broker.topology.events], interest_pattern("acme", "conv", "c1"))
    process = Broker(f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.2", broker.topology)
    await process.connect()
    try:
        assert process.channel is not None and process.connection is not None
        await process.channel.declare_queue("held", exclusive=True, auto_delete=True)  # restored at the gate
        monkeypatch.setattr(PrivateQueue, "restore", held)
        proxy.strand()
        proxy.release()
        channel, connection = process.channel, process.connection
        assert isinstance(channel, PrivateQueueChannel)
        await until(lambda: connection.connected.is_set() and channel.restoring, what="connection back, channel not")
        key = event_key("acme", "conv", "c1", "message.created")
        published = asyncio.gather(
            process.publish_events([(key, command("x", n=1)), (key, command("x", n=2))]),
            process.publish_event(key, command("x", n=3)),
        )
        await asyncio.sleep(0.2)
        assert not published.done()  # waiting for the channel, not failed
        gate.set()
        await asyncio.wait_for(published, 5)
        got: list[int] = []
        for _ in range(100):
            message = await seen.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            got.append(Envelope.from_bytes(message.body).data["n"])
            if len(got) == 3:
                break
        assert sorted(got) == [1, 2, 3] and got.index(1) < got.index(2)  # a batch keeps its order
    finally:
        gate.set()
        await process.close()
