"""A process's private (exclusive) queues take a fresh name at every declaration, first and restored.

An exclusive queue belongs to one connection and dies with it, so after a reconnect aio-pika's robust
channel declares it again, under the same name. On a RabbitMQ cluster that is a race: when a node is
lost, each survivor first lists the names of the transient queues the dead node hosted, then deletes
those names in later transactions (3.10 `rabbit_amqqueue:on_node_down`: "N transient queues from an
old incarnation of node ... deleted"). A client that reconnects in between re-declares its queue on
a survivor under one of those names, and the cleanup deletes the new queue's record and bindings
while its queue process and consumer live on: nothing routes to it (replies come back unroutable,
events are dropped) and no consumer cancel tells the client. A queue of a name never used before
cannot be on that list. The same holds on one node when the client notices a dead connection before
the broker does: the old connection still owns the old name (RESOURCE_LOCKED) until its heartbeat
times out.

Whoever hands the name to others (an RPC client's `reply_to`) reads `queue.name` when it does so;
bindings and consumers move to the new name with the queue (aio-pika restores them). What the old
queue held is gone with it, as it always was with the connection that owned it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiormq
from aio_pika import RobustChannel
from aio_pika.abc import AbstractChannel
from aio_pika.robust_queue import RobustQueue
from pamqp.common import Arguments
from relay_log import get_logger

log = get_logger(__name__)


def fresh_name(base: str) -> str:
    return f"{base}.{uuid.uuid4().hex[:12]}"


class PrivateQueue(RobustQueue):
    """A robust queue; an exclusive one is renamed `<base>.<token>` before each declaration."""

    __slots__ = ("base_name",)

    def __init__(
        self,
        channel: AbstractChannel,
        name: str | None,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: Arguments = None,
        passive: bool = False,
    ) -> None:
        # a passive declare only looks a queue up: it keeps the name it was given
        self.base_name = (name or "private") if exclusive and not passive else None
        super().__init__(
            channel,
            fresh_name(self.base_name) if self.base_name else name,
            durable=durable,
            exclusive=exclusive,
            auto_delete=auto_delete,
            arguments=arguments,
            passive=passive,
        )

    def _rename(self) -> None:
        if self.base_name is None:
            return
        old, self.name = self.name, fresh_name(self.base_name)
        if isinstance(self.channel, PrivateQueueChannel):
            self.channel.renamed(self, old)
        log.info("broker.private_queue_renamed", old=old, new=self.name)

    async def restore(self, channel: Any = None) -> None:
        # the channel or connection was lost (and the old queue with it): declared anew on the new one
        self._rename()
        await super().restore(channel)

    async def _probe(self, channel: aiormq.abc.AbstractChannel) -> None:
        # the broker cancelled our consumer: the queue was deleted under us; its successor gets a new name
        self._rename()
        await super()._probe(channel)


class PrivateQueueChannel(RobustChannel):
    """A robust channel of private queues that also tells whether it is being restored: from the loss of its
    channel (or connection) until its exchanges, queues (renamed), bindings and consumers are back. aio-pika's
    `is_closed` turns false as soon as the new channel is open, before its queues are declared again."""

    QUEUE_CLASS = PrivateQueue

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.restoring = True  # until its first opening

    async def _on_open(self) -> None:
        await super()._on_open()
        self.restoring = False

    async def _on_close(self, closing: asyncio.Future[Any]) -> BaseException | None:
        self.restoring = True
        return await super()._on_close(closing)

    def renamed(self, queue: RobustQueue, old: str) -> None:
        """Keep the channel's own index (name -> queues, used by `queue_delete`) on the current name."""
        holders = self._queues.get(old)
        if holders is None or queue not in holders:
            return
        holders.discard(queue)
        if not holders:
            del self._queues[old]
        self._queues[queue.name].add(queue)
