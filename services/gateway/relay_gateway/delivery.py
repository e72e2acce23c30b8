"""The replica's event consumer: its own exclusive queue on relay.events, emitted to local sockets only."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime

import socketio
from aio_pika.abc import AbstractQueue
from pydantic import ValidationError
from relay_broker import Broker
from relay_contracts import Envelope
from relay_log import bound_contextvars, get_logger

from relay_gateway import metrics
from relay_gateway.dialects import Table, render
from relay_gateway.event_acks import DeferredAcks
from relay_gateway.fanout import FLUSHER
from relay_gateway.interest import Interest
from relay_gateway.rooms import scoped

log = get_logger(__name__)

# relay.emit to a role, any room, or everyone is rare: every replica takes all of them and emits to
# whichever local sockets are in the target room
EMIT_EVERYWHERE = ("*.all.#", "*.role.#", "*.room.#")
# events acked together (AMQP multiple ack): the per-event ack round trip is off the hot path, and the
# frames of every event handled between two acks leave each socket in one write
ACK_BATCH = 64
# how long a drained queue's ack waits for more events to share it (relay_gateway.event_acks)
ACK_DELAY_SECONDS = 0.1


class RecentIds:
    """Remembers the last `size` event ids so a redelivered event is emitted once."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, event_id: str) -> bool:
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return True
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return False


class EventDelivery:
    def __init__(self, sio: socketio.AsyncServer, broker: Broker, replica_id: str, table: Table) -> None:
        self._sio = sio
        self._broker = broker
        self._replica_id = replica_id
        self._table = table
        self._recent = RecentIds()
        self._queue: AbstractQueue | None = None
        self._task: asyncio.Task[None] | None = None
        self.interest = Interest(self._bind, self._unbind)
        # features that act on an event locally besides rendering it (e.g. move a new member's sockets into a room)
        self.listeners: list[Callable[[Envelope], Awaitable[None]]] = []

    async def start(self) -> None:
        assert self._broker.channel is not None
        # declared as `<base>.<token>`, a fresh token after every reconnect (relay_broker.private_queues);
        # the bindings of Interest and EMIT_EVERYWHERE move with it
        self._queue = await self._broker.channel.declare_queue(self.queue_base, exclusive=True, auto_delete=True)
        emit = self._broker.exchanges[self._broker.topology.emit]
        for pattern in EMIT_EVERYWHERE:
            await self._queue.bind(emit, pattern)
        self._task = asyncio.create_task(self._consume(), name="relay-event-delivery")

    @property
    def queue(self) -> AbstractQueue | None:
        return self._queue

    @property
    def queue_base(self) -> str:
        """The replica's queue name without the token of its current connection (a stable metric label)."""
        return f"{self._broker.topology.prefix}.gateway.{self._replica_id}"

    async def _bind(self, pattern: str) -> None:
        assert self._queue is not None
        # during a reconnect the queue is declared again under a new name: a bind before that would fail
        await self._broker.restored(self._queue.channel)
        await self._queue.bind(self._broker.exchanges[self._broker.topology.events], pattern)
        # relay.emit targets users and tenants with the same keys: the same interest covers both
        await self._queue.bind(self._broker.exchanges[self._broker.topology.emit], pattern)
        metrics.BINDINGS.labels(self._replica_id).set(len(self.interest.patterns()) + 1)

    async def _unbind(self, pattern: str) -> None:
        assert self._queue is not None
        await self._broker.restored(self._queue.channel)
        await self._queue.unbind(self._broker.exchanges[self._broker.topology.events], pattern)
        await self._queue.unbind(self._broker.exchanges[self._broker.topology.emit], pattern)
        metrics.BINDINGS.labels(self._replica_id).set(len(self.interest.patterns()))

    async def restored(self) -> None:
        """Wait while a reconnect restores the event queue (its fresh name, bindings and consumer)."""
        assert self._queue is not None
        await self._broker.restored(self._queue.channel)

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done() and self._broker.is_connected

    async def _consume(self) -> None:
        assert self._queue is not None
        # one message at a time, in queue order: per-conversation order is the broker's order. The queue is
        # this replica's own and dies with it, so acking in batches loses nothing a single ack would keep.
        acks = DeferredAcks(batch=ACK_BATCH, delay=ACK_DELAY_SECONDS)
        drained = True  # nothing was waiting after the previous event
        try:
            async with self._queue.iterator() as messages:
                async for message in messages:
                    try:
                        envelope = Envelope.from_bytes(message.body)
                    except ValidationError:
                        log.error("delivery.undecodable", message_id=message.message_id)
                        envelope = None
                    if envelope is not None:
                        # a trickle (the previous event found the queue empty after it, and nothing is queued
                        # behind this one): no later event could share a write, so its frames leave as they are
                        # written (fanout.Flusher). Under a stream they wait for the flush and share it.
                        FLUSHER.direct = drained and _drained(messages)
                        try:
                            await self.deliver(envelope)
                        except Exception:
                            log.exception("delivery.failed", event_id=envelope.id, event_type=envelope.type)
                        finally:
                            FLUSHER.direct = False
                    drained = _drained(messages)
                    if drained:
                        # nothing more waiting: the frames of the events just handled leave now (one write per
                        # socket), not on the loop's next pass
                        FLUSHER.flush()
                    await acks.handled(message, drained=drained)
        finally:
            acks.close()

    async def deliver(self, envelope: Envelope) -> None:
        if self._recent.seen(envelope.id):
            metrics.DUPLICATES_DROPPED.inc()
            return
        with bound_contextvars(correlation_id=envelope.correlationId, tenant=envelope.tenant, event_id=envelope.id):
            for d in render(self._table, envelope):
                room = (
                    scoped(envelope.tenant, d.room)
                    if isinstance(d.room, str)
                    else [scoped(envelope.tenant, r) for r in d.room]
                )
                await self._sio.emit(d.event, d.payload, room=room, namespace=d.namespace, ignore_queue=True)
                metrics.EVENTS_OUT.labels(d.namespace, d.event).inc()
                log.debug("delivery.emitted", wire_event=d.event, room=d.room)
            metrics.DELIVERY_SECONDS.observe(max(0.0, time.time() - _epoch(envelope.occurredAt)))
            for listener in self.listeners:
                await listener(envelope)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _drained(messages: object) -> bool:
    """No further message is waiting in the consumer's buffer (aio-pika keeps them in `_queue`)."""
    waiting = getattr(messages, "_queue", None)
    return waiting is None or waiting.empty()


def _epoch(iso_time: str) -> float:
    return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()
