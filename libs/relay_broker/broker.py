"""Connection, topology and confirmed publishing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq import spec
from relay_contracts import Envelope
from relay_log import get_logger

from relay_broker.failover import FailoverConnection, broker_urls
from relay_broker.lanes import partition_of

log = get_logger(__name__)

PERSISTENT, NOT_PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT), int(aio_pika.DeliveryMode.NOT_PERSISTENT)
COMMAND_DELIVERY_LIMIT = 5
CONNECT_TIMEOUT_SECONDS = 10.0  # one attempt to reach a node (TCP and AMQP handshake)


@dataclass(frozen=True)
class Topology:
    """Exchange and queue names of one Relay instance (`RELAY_INSTANCE` prefixes them all)."""

    prefix: str = "relay"
    # commands travel in this many ordered lanes per service (one queue each; see partitions.py);
    # every process of one Relay must agree on it
    partitions: int = 8

    @property
    def commands(self) -> str:
        return f"{self.prefix}.commands"

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def emit(self) -> str:
        return f"{self.prefix}.emit"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}.dlx"

    def service_queue(self, service: str, partition: int) -> str:
        return f"{self.prefix}.{service}.{partition}"

    def service_queues(self, service: str) -> list[str]:
        return [self.service_queue(service, n) for n in range(self.partitions)]

    @property
    def members(self) -> str:
        """Where the instances of each service announce themselves (routing key: the service)."""
        return f"{self.prefix}.members"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}.dead-letters"


class Broker:
    """One robust connection, one confirming channel, the declared exchanges."""

    def __init__(self, url: str, topology: Topology, *, prefetch: int = 64) -> None:
        self.url = url
        self.topology = topology
        self._prefetch = prefetch
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractChannel | None = None
        # replies to request/reply commands: no confirms (a confirm would not make a reply any less losable,
        # since the caller's exclusive queue lives only as long as its connection), so they leave at once
        self.reply_channel: AbstractChannel | None = None
        self.exchanges: dict[str, AbstractExchange] = {}

    async def connect(self) -> None:
        urls = broker_urls(self.url)
        for start in range(len(urls)):  # at start, any node that answers will do
            connection = FailoverConnection(
                urls[start:] + urls[:start], client_properties={"connection_name": self.topology.prefix}
            )
            try:
                # the timeout holds for every later reconnection attempt too: without one, an attempt whose
                # node accepts TCP but never finishes the AMQP handshake (a cluster node busy with the loss
                # of another) waits forever, and the process never moves on to the next node
                await connection.connect(timeout=CONNECT_TIMEOUT_SECONDS)
                break
            except (aio_pika.exceptions.AMQPError, OSError):
                if start == len(urls) - 1:
                    raise
        self.connection = connection
        self.channel = await self.connection.channel(publisher_confirms=True)
        self.reply_channel = await self.connection.channel(publisher_confirms=False)
        await self.channel.set_qos(prefetch_count=self._prefetch)
        await self._declare()

    async def _declare(self) -> None:
        channel = self._channel()
        t = self.topology
        dlx = await channel.declare_exchange(t.dead_letters, aio_pika.ExchangeType.FANOUT, durable=True)
        dead = await self._dead_letter_queue(channel)
        await dead.bind(dlx)
        for name in (t.commands, t.events, t.emit, t.members):
            self.exchanges[name] = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        self.exchanges[t.dead_letters] = dlx

    async def _dead_letter_queue(self, channel: AbstractChannel) -> AbstractQueue:
        """A quorum queue, so it outlives the loss of any one node of a cluster (a classic queue on a
        lost node could not even be declared again, and every reconnect would fail); one made by an
        older Relay as a classic queue is used as it is."""
        assert self.connection is not None
        probe = await self.connection.channel()  # a failed passive declare closes its channel
        try:
            await probe.declare_queue(self.topology.dead_letter_queue, passive=True)
            exists = True
        except aio_pika.exceptions.ChannelClosed:
            exists = False
        finally:
            if not probe.is_closed:
                await probe.close()
        if exists:
            return await channel.declare_queue(self.topology.dead_letter_queue, passive=True)
        return await channel.declare_queue(
            self.topology.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )

    def _channel(self) -> AbstractChannel:
        if self.channel is None:
            raise RuntimeError("broker not connected")
        return self.channel

    @property
    def prefetch(self) -> int:
        return self._prefetch

    @property
    def is_connected(self) -> bool:
        return bool(self.connection and not self.connection.is_closed and self.channel and not self.channel.is_closed)

    async def declare_service_queues(self, service: str, routing_keys: list[str]) -> list[str]:
        """The service's command lanes: one durable quorum queue per partition, each with a single
        active consumer (so one lane's commands are handled in order by one instance at a time);
        poison messages go to the DLX. Returns the queue names, lane 0 first."""
        names = []
        for partition in range(self.topology.partitions):
            queue = await self.declare_service_queue(service, partition)
            for key in routing_keys:
                await queue.bind(self.exchanges[self.topology.commands], f"{partition}.{key}")
            names.append(queue.name)
        return names

    async def declare_service_queue(
        self, service: str, partition: int, channel: AbstractChannel | None = None
    ) -> AbstractQueue:
        return await (channel or self._channel()).declare_queue(
            self.topology.service_queue(service, partition),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-single-active-consumer": True,
                "x-delivery-limit": COMMAND_DELIVERY_LIMIT,
                "x-dead-letter-exchange": self.topology.dead_letters,
            },
        )

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        envelope: Envelope,
        *,
        reply_to: str | None = None,
        persistent: bool = True,
        expiration: float | None = None,
        mandatory: bool = True,
    ) -> None:
        """Publish and wait for the broker's confirm; raises if the broker nacks or is away. A message with an
        `expiration` (seconds) that no consumer took in time is dropped by the broker (to the DLX)."""
        properties = spec.Basic.Properties(
            content_type="application/json",
            message_id=envelope.id,
            correlation_id=envelope.id if reply_to else envelope.correlationId,
            reply_to=reply_to,
            message_type=envelope.type,
            headers={"x-correlation-id": envelope.correlationId, "x-tenant": envelope.tenant},
            delivery_mode=PERSISTENT if persistent else NOT_PERSISTENT,
            expiration=None if expiration is None else str(int(expiration * 1000)),
        )
        await self._basic_publish(
            self._channel(), exchange, routing_key, envelope.to_bytes(), properties, mandatory=mandatory
        )

    async def _basic_publish(
        self,
        channel: AbstractChannel,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        *,
        mandatory: bool,
    ) -> None:
        # aio-pika's Exchange.publish, minus its Message object and its wait for the frame to reach the socket
        # (`wait=False`): holding the channel's lock until the writer task has written the frame made every
        # publish on a channel take turns with that task, a few loop passes each. The order on the channel is
        # the order of the calls all the same, and with confirms the broker's ack is still awaited.
        if channel.is_closed:
            raise aio_pika.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
        # aiormq's Channel takes `wait`; its abstract base does not say so
        underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
        await underlay.basic_publish(
            body,
            exchange=exchange,
            routing_key=routing_key,
            properties=properties,
            mandatory=mandatory,
            wait=False,
        )

    async def reply(self, reply_to: str, correlation_id: str | None, body: bytes) -> None:
        """A command's answer to its caller's queue: no confirm, and unroutable (the caller is gone) means dropped."""
        channel = self.reply_channel or self.channel
        if channel is None:
            return  # closed: nobody to answer through (the caller's timer settles it)
        properties = spec.Basic.Properties(correlation_id=correlation_id)
        await self._basic_publish(channel, "", reply_to, body, properties, mandatory=False)

    async def publish_command(
        self, envelope: Envelope, *, reply_to: str | None = None, expiration: float | None = None
    ) -> None:
        """On the lane of what the command is about: routing key `<lane>.<type>` (lanes.py)."""
        key = f"{partition_of(envelope, self.topology.partitions)}.{envelope.type}"
        await self.publish(self.topology.commands, key, envelope, reply_to=reply_to, expiration=expiration)

    async def publish_event(self, routing_key: str, envelope: Envelope) -> None:
        # an event nobody listens to (no gateway has an interested socket) is dropped, not returned to us
        await self.publish(self.topology.events, routing_key, envelope, persistent=False, mandatory=False)

    async def publish_events(self, events: list[tuple[str, Envelope]]) -> None:
        """Publish events in this order and wait for all their confirms at once (not one round trip each).

        The channel writes publishes in the order their tasks reach it, and the tasks start in list order
        without suspending before they queue on the channel's lock, so the broker gets them in order."""
        await asyncio.gather(*(self.publish_event(key, event) for key, event in events))

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
        self.connection = None
        self.channel = None
        self.reply_channel = None

    async def delete_topology(self) -> None:
        """Remove this instance's exchanges and queues (tests use a throwaway prefix)."""
        channel = self._channel()
        t = self.topology
        for q in (t.dead_letter_queue, *(q for s in ("message", "presence", "order") for q in t.service_queues(s))):
            await channel.queue_delete(q)
        for name in (t.commands, t.events, t.emit, t.members, t.dead_letters):
            await channel.exchange_delete(name)
