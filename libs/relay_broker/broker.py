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
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aiormq import spec
from relay_contracts import Envelope
from relay_log import get_logger

from relay_broker.failover import FailoverConnection, broker_urls
from relay_broker.lanes import partition_of
from relay_broker.private_queues import PrivateQueueChannel

log = get_logger(__name__)

PERSISTENT, NOT_PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT), int(aio_pika.DeliveryMode.NOT_PERSISTENT)
COMMAND_DELIVERY_LIMIT = 5
CONNECT_TIMEOUT_SECONDS = 10.0  # one attempt to reach a node (TCP and AMQP handshake)
RESTORE_WAIT_SECONDS = 5.0  # how long a publish waits for its channel to be restored after a reconnect


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
        # commands leave on a channel of their own, which a nack replaces (`_renew_command_channel`)
        self._command_channel: AbstractChannel | None = None
        self._renewing = asyncio.Lock()

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
        self._command_channel = await self.connection.channel(publisher_confirms=True)

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
    def command_channel(self) -> AbstractChannel | None:
        """The confirming channel commands leave on (a new one after a nack)."""
        return self._command_channel

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
        await self.restored(self._channel())
        await self._publish_now(exchange, routing_key, envelope, reply_to, persistent, expiration, mandatory)

    async def _publish_now(
        self,
        exchange: str,
        routing_key: str,
        envelope: Envelope,
        reply_to: str | None = None,
        persistent: bool = True,
        expiration: float | None = None,
        mandatory: bool = True,
    ) -> None:
        properties = _properties(envelope, reply_to=reply_to, persistent=persistent, expiration=expiration)
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
        await self.restored(channel)
        properties = spec.Basic.Properties(correlation_id=correlation_id)
        await self._basic_publish(channel, "", reply_to, body, properties, mandatory=False)

    async def restored(self, channel: AbstractChannel) -> None:
        """Wait (up to RESTORE_WAIT_SECONDS) for a channel that a reconnect has not restored yet (its private
        queues declared again, under their new names, with their bindings and consumers). aio-pika fails
        a publish on such a channel at once, and the connection restores its channels one after another: a
        service's lane channel can be back and deliver a command while the channel its handler publishes the
        events (or the reply) on is not. That handler would fail, the command be redelivered at once and fail
        again, its delivery limit spent in milliseconds: dead-lettered, though applied, while its caller waits
        for a reply that never comes. Only while the connection is up (its channels being restored): while the
        broker is away, or after `close`, a publish fails fast as before."""
        connection = self.connection
        restoring = channel.restoring if isinstance(channel, PrivateQueueChannel) else channel.is_closed
        if not restoring or not isinstance(channel, AbstractRobustChannel) or connection is None:
            return
        if connection.close_called or connection.is_closed or not connection.connected.is_set():
            return
        try:
            await asyncio.wait_for(channel.ready(), RESTORE_WAIT_SECONDS)
        except TimeoutError:
            log.warning("broker.channel_not_restored", waited=RESTORE_WAIT_SECONDS)

    async def publish_command(
        self, envelope: Envelope, *, reply_to: str | None = None, expiration: float | None = None
    ) -> None:
        """On the lane of what the command is about: routing key `<lane>.<type>` (lanes.py). Raises
        `DeliveryError` if the broker nacks it (then it was not enqueued, and the next command goes out
        on a fresh channel)."""
        key = f"{partition_of(envelope, self.topology.partitions)}.{envelope.type}"
        channel = self._command_channel
        if channel is None:
            raise RuntimeError("broker not connected")
        properties = _properties(envelope, reply_to=reply_to, persistent=True, expiration=expiration)
        try:
            # as aio-pika's Exchange.publish (mandatory, the confirm awaited), minus its Message object and its
            # wait for the frame to reach the socket: one of these per REST send in a gateway
            await self._basic_publish(
                channel, self.topology.commands, key, envelope.to_bytes(), properties, mandatory=True
            )
        except aio_pika.exceptions.DeliveryError:
            await self._renew_command_channel(channel)
            raise

    async def _renew_command_channel(self, nacked: AbstractChannel) -> None:
        """Replace a command channel the broker nacked. RabbitMQ 3.10 can poison a channel for good: the
        first publish of a channel to a quorum queue asks the member the queue record names as leader
        (`rabbit_fifo_client:enqueue`, queue_status undefined: an rpc to that node for the machine
        version). If that node is down (the leader was just lost and the new one is not elected or not
        recorded yet), the publish is nacked and the channel's state for that queue is left as it was,
        so every later publish of the channel to that queue asks the dead node again and is nacked too,
        forever, though the queue has a live leader a second later. A fresh channel starts from the
        current queue record (the new leader first), so a nack costs one refused command, not all of
        them. Only the command channel publishes to quorum queues; nothing consumes on it."""
        async with self._renewing:
            if self._command_channel is not nacked or self.connection is None or self.connection.is_closed:
                return  # renewed by a concurrent caller already, or closing
            try:
                self._command_channel = await self.connection.channel(publisher_confirms=True)
            except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
                log.warning("broker.command_channel_renew_failed", error=type(exc).__name__)
                return
        log.warning("broker.command_channel_renewed", reason="nack")
        try:
            await nacked.close()
        except Exception as exc:  # already gone with its connection: nothing to close
            log.debug("broker.command_channel_close_failed", error=type(exc).__name__)

    async def publish_event(self, routing_key: str, envelope: Envelope) -> None:
        # an event nobody listens to (no gateway has an interested socket) is dropped, not returned to us
        await self.publish(self.topology.events, routing_key, envelope, persistent=False, mandatory=False)

    async def publish_events(self, events: list[tuple[str, Envelope]]) -> None:
        """Publish events in this order and wait for all their confirms at once (not one round trip each).

        The channel writes publishes in the order their tasks reach it, and the tasks start in list order
        without suspending before they queue on the channel's lock, so the broker gets them in order (hence
        one wait for a channel being restored before them all, not one in each)."""
        await self.restored(self._channel())
        await asyncio.gather(
            *(
                self._publish_now(self.topology.events, key, event, persistent=False, mandatory=False)
                for key, event in events
            )
        )

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
        self.connection = None
        self.channel = None
        self.reply_channel = None
        self._command_channel = None

    async def delete_topology(self) -> None:
        """Remove this instance's exchanges and queues (tests use a throwaway prefix)."""
        channel = self._channel()
        t = self.topology
        for q in (t.dead_letter_queue, *(q for s in ("message", "presence", "order") for q in t.service_queues(s))):
            await channel.queue_delete(q)
        for name in (t.commands, t.events, t.emit, t.members, t.dead_letters):
            await channel.exchange_delete(name)


def _properties(
    envelope: Envelope, *, reply_to: str | None, persistent: bool, expiration: float | None
) -> spec.Basic.Properties:
    return spec.Basic.Properties(
        content_type="application/json",
        message_id=envelope.id,
        correlation_id=envelope.id if reply_to else envelope.correlationId,
        reply_to=reply_to,
        message_type=envelope.type,
        headers={"x-correlation-id": envelope.correlationId, "x-tenant": envelope.tenant},
        delivery_mode=PERSISTENT if persistent else NOT_PERSISTENT,
        expiration=None if expiration is None else str(int(expiration * 1000)),
    )
