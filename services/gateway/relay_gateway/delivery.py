"""The replica's event consumer: its own exclusive queue on relay.events and relay.emit, to local sockets."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import socketio
from pydantic import ValidationError
from relay_broker import Broker
from relay_broker.queue_stream import PrivateQueueStream
from relay_contracts import Envelope
from relay_log import bind_contextvars, get_logger, reset_contextvars

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
# under a run of waiting events, their frames leave (and the loop gets a pass) at least this often: the events
# share writes, and the first one's frames wait at most this long for the last one's
FLUSH_AFTER_SECONDS = 0.005


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
        self._events_out: dict[tuple[str, str], Any] = {}
        # bound once (logging is configured by now): a call through the module's lazy proxy resolves the logger on
        # every call, ~1 µs a delivery even when debug lines are filtered out
        self._log = log.bind()
        self._stream: PrivateQueueStream | None = None
        self._task: asyncio.Task[None] | None = None
        self.interest = Interest(self._bind, self._unbind)
        # features that act on an event locally besides rendering it (e.g. move a new member's sockets into a room)
        self.listeners: list[Callable[[Envelope], Awaitable[None]]] = []

    async def start(self) -> None:
        # a connection of its own (relay_broker.queue_stream): the queue is declared as `<base>.<token>`, a fresh
        # token on every connection, with EMIT_EVERYWHERE and Interest's bindings
        emit = self._broker.topology.emit
        self._stream = PrivateQueueStream(
            self._broker.url,
            self.queue_base,
            prefetch=self._broker.prefetch,
            connection_name=f"{self.queue_base}.events",
            bindings=[(emit, pattern) for pattern in EMIT_EVERYWHERE],
        )
        await self._stream.start()
        self._task = asyncio.create_task(self._consume(self._stream), name="relay-event-delivery")

    @property
    def queue_name(self) -> str | None:
        """The event queue's current name (a new one after every reconnect)."""
        return self._stream.name if self._stream is not None else None

    @property
    def queue_base(self) -> str:
        """The replica's queue name without the token of its current connection (a stable metric label)."""
        return f"{self._broker.topology.prefix}.gateway.{self._replica_id}"

    def _targets(self, pattern: str) -> tuple[tuple[str, str], tuple[str, str]]:
        # relay.emit targets users and tenants with the same keys: the same interest covers both
        return (self._broker.topology.events, pattern), (self._broker.topology.emit, pattern)

    async def _bind(self, pattern: str) -> None:
        assert self._stream is not None
        await self._stream.bind(*self._targets(pattern))
        metrics.BINDINGS.labels(self._replica_id).set(len(self.interest.patterns()) + 1)

    async def _unbind(self, pattern: str) -> None:
        assert self._stream is not None
        await self._stream.unbind(*self._targets(pattern))
        metrics.BINDINGS.labels(self._replica_id).set(len(self.interest.patterns()))

    async def restored(self) -> None:
        """Wait while a reconnect restores the event queue (its fresh name, bindings and consumer)."""
        assert self._stream is not None
        await self._stream.restored()

    async def backlog(self) -> int | None:
        """Events waiting in the queue (not yet sent to this replica), or None while it reconnects."""
        return await self._stream.message_count() if self._stream is not None else None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done() and self._stream is not None and self._stream.ready

    async def _consume(self, stream: PrivateQueueStream) -> None:
        # one message at a time, in queue order: per-conversation order is the broker's order. The queue is
        # this replica's own and dies with it, so acking in batches loses nothing a single ack would keep.
        acks = DeferredAcks(batch=ACK_BATCH, delay=ACK_DELAY_SECONDS)
        inbox = stream.inbox
        loop = asyncio.get_running_loop()
        flushed_at = loop.time()
        drained = True  # nothing was waiting after the previous event
        try:
            async for link, tag, body in stream.deliveries():
                try:
                    envelope = Envelope.from_bytes(body)
                except ValidationError:
                    log.error("delivery.undecodable", size=len(body))
                    envelope = None
                if envelope is not None:
                    # a trickle (the previous event found the queue empty after it, and nothing is queued
                    # behind this one): no later event could share a write, so its frames leave as they are
                    # written (fanout.Flusher). Under a stream they wait for the flush and share it.
                    FLUSHER.direct = drained and not inbox
                    try:
                        await self.deliver(envelope)
                    except Exception:
                        log.exception("delivery.failed", event_id=envelope.id, event_type=envelope.type)
                    finally:
                        FLUSHER.direct = False
                drained = not inbox
                # a long run of waiting events (the stream hands them over without a pass of the loop in between)
                long_run = not drained and loop.time() - flushed_at >= FLUSH_AFTER_SECONDS
                if drained or long_run:
                    # the frames of the events handled so far leave now (one write per socket), not on the loop's
                    # next pass or after the rest of the run
                    FLUSHER.flush()
                    flushed_at = loop.time()
                acks.handled(link, tag, drained=drained)
                if long_run:
                    await asyncio.sleep(0)  # the loop's turn (socket reads, pings, REST) before the rest
        finally:
            acks.close()

    async def deliver(self, envelope: Envelope) -> None:
        if self._recent.seen(envelope.id):
            metrics.DUPLICATES_DROPPED.inc()
            return
        # the event's ids on every log line of its delivery (and of the listeners'); tokens, not structlog's
        # `bound_contextvars`, which copies the whole context to restore it (~17 % of an event's Python here)
        tokens = bind_contextvars(correlation_id=envelope.correlationId, tenant=envelope.tenant, event_id=envelope.id)
        try:
            for d in render(self._table, envelope):
                room = (
                    scoped(envelope.tenant, d.room)
                    if isinstance(d.room, str)
                    else [scoped(envelope.tenant, r) for r in d.room]
                )
                await self._sio.emit(d.event, d.payload, room=room, namespace=d.namespace, ignore_queue=True)
                self._counted(d.namespace, d.event).inc()
                self._log.debug("delivery.emitted", wire_event=d.event, room=d.room)
            metrics.DELIVERY_SECONDS.observe(max(0.0, time.time() - _epoch(envelope.occurredAt)))
            for listener in self.listeners:
                await listener(envelope)
        finally:
            reset_contextvars(**tokens)

    def _counted(self, namespace: str, event: str) -> Any:
        """EVENTS_OUT's child for this wire event, looked up once (the events of the dialect tables)."""
        child = self._events_out.get((namespace, event))
        if child is None:
            child = self._events_out[(namespace, event)] = metrics.EVENTS_OUT.labels(namespace, event)
        return child

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._stream is not None:
            await self._stream.close()


def _epoch(iso_time: str) -> float:
    return datetime.fromisoformat(iso_time).timestamp()  # Python 3.11 reads the "Z" suffix
