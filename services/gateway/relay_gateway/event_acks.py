"""Acks of the replica's event queue: one `basic.ack multiple` per batch, and a drained queue's ack deferred.

Every ack is a write on the broker's socket, and a write that wakes the broker costs the gateway more than
handling a small event: at 16k deliveries/s (200 sockets in one room, 80 events/s per replica) one ack per
event was ~15 % of a gateway's samples (bench/reports/fanout.md). So when the queue drains, the ack of what
was handled waits up to `delay` for more events: a steady trickle is acked once per `delay`, at the arrival
of an event (the loop is awake anyway); only a stream that stops is acked by a timer.

Always through the channel that delivered: a restored channel numbers its deliveries from 1 again, so the
tags of the old one are dropped, never acked on the new one (a multiple ack would settle deliveries not yet
handled, or fail the channel on an unknown tag). Nothing is lost by deferring: the queue is this replica's
own and dies with its channel or connection, acked or not (relay_broker.private_queues).
"""

from __future__ import annotations

import asyncio
from typing import cast

import aiormq
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import AMQPError, ChannelInvalidStateError
from relay_log import get_logger

from relay_gateway.tasks import TaskSet

log = get_logger(__name__)


class DeferredAcks:
    def __init__(self, *, batch: int, delay: float) -> None:
        self._batch = batch
        self._delay = delay
        # the channel and tag of the newest delivery handled and not acked (aio-pika's message no longer
        # names its channel once that one is closed)
        self._channel: aiormq.Channel | None = None
        self._tag = 0
        self._count = 0
        self._since = 0.0  # loop time the oldest unacked one was handled
        self._timer: asyncio.TimerHandle | None = None
        self._sending = TaskSet()

    async def handled(self, message: AbstractIncomingMessage, *, drained: bool) -> None:
        """`message` was handled (in delivery order); `drained`: nothing else is waiting to be handled."""
        loop = asyncio.get_running_loop()
        try:
            channel = cast(aiormq.Channel, message.channel)  # its `basic_ack` takes `wait`; the abstract one not
        except ChannelInvalidStateError:
            self._drop("channel closed")  # a restore is under way: this one and those before it go unacked
            return
        if self._channel is not None and self._channel is not channel:
            self._drop("channel restored")
        if self._channel is None:
            self._since = loop.time()
        self._channel = channel
        self._tag = message.delivery_tag or 0
        self._count += 1
        if self._count >= self._batch or (drained and loop.time() - self._since >= self._delay):
            await self.flush()
        elif drained:
            # re-armed by each event: a steady stream is acked on arrival above, the timer fires when it stops
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_later(self._delay, self._on_timer)

    async def flush(self) -> None:
        """Ack everything handled so far, now."""
        channel, tag, self._channel, self._count = self._channel, self._tag, None, 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if channel is None or not tag:
            return
        if channel.is_closed:  # restored since: its tags mean nothing to the new channel
            log.info("delivery.ack_dropped", reason="channel closed")
            return
        try:
            await channel.basic_ack(tag, multiple=True, wait=False)
        except (AMQPError, ChannelInvalidStateError, ConnectionError) as exc:
            log.info("delivery.ack_dropped", reason=type(exc).__name__)

    def _on_timer(self) -> None:
        self._timer = None
        self._sending.spawn(self.flush())

    def _drop(self, reason: str) -> None:
        if self._count:
            log.info("delivery.ack_dropped", reason=reason, events=self._count)
        self._channel, self._count = None, 0

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
