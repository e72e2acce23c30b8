"""Acks of the replica's event queue: one `basic.ack multiple` per batch, and a drained queue's ack deferred.

Every ack is a write on the broker's socket, and a write that wakes the broker costs the gateway more than
handling a small event: at 16k deliveries/s (200 sockets in one room, 80 events/s per replica) one ack per
event was ~15 % of a gateway's samples (bench/reports/fanout.md). So when the queue drains, the ack of what
was handled waits up to `delay` for more events: a steady trickle is acked once per `delay`, at the arrival
of an event (the loop is awake anyway); only a stream that stops is acked by a timer.

Always through the connection that delivered (relay_broker.queue_stream.Link): a new connection numbers its
deliveries from 1 again, so the tags of the old one are dropped, never acked on the new one (a multiple ack
would settle deliveries not yet handled, or fail the channel on an unknown tag). Nothing is lost by deferring:
the queue is this replica's own and dies with its connection, acked or not (relay_broker.private_queues).
"""

from __future__ import annotations

import asyncio

from relay_broker.queue_stream import Link
from relay_log import get_logger

log = get_logger(__name__)


class DeferredAcks:
    def __init__(self, *, batch: int, delay: float) -> None:
        self._batch = batch
        self._delay = delay
        self._link: Link | None = None  # the connection and tag of the newest delivery handled and not acked
        self._tag = 0
        self._count = 0
        self._since = 0.0  # loop time the oldest unacked one was handled
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def handled(self, link: Link, tag: int, *, drained: bool) -> None:
        """Delivery `tag` of `link` was handled (in delivery order); `drained`: nothing else is waiting."""
        if self._link is not link:
            if self._link is not None:
                self._drop("connection restored")
            self._since = self._loop.time()
            self._link = link
        self._tag = tag
        self._count += 1
        if self._count >= self._batch or (drained and self._loop.time() - self._since >= self._delay):
            self.flush()
        elif drained:
            # re-armed by each event: a steady stream is acked on arrival above, the timer fires when it stops
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_later(self._delay, self.flush)

    def flush(self) -> None:
        """Ack everything handled so far, now."""
        link, tag, self._link, self._count = self._link, self._tag, None, 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if link is None or not tag:
            return
        if link.is_closed:  # a new connection since: its tags mean nothing there
            log.info("delivery.ack_dropped", reason="connection closed")
            return
        link.ack(tag)

    def _drop(self, reason: str) -> None:
        if self._count:
            log.info("delivery.ack_dropped", reason=reason, events=self._count)
        self._link, self._count = None, 0

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
