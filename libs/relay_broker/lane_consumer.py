"""Consume a balanced share of a service's command lanes, and hand a lane over only when it is idle.

Each lane is a quorum queue with a single active consumer, so the broker never delivers one lane
to two instances at once. Handing a lane over must not overlap either: cancelling the active
consumer would activate the next one while this one still works on its prefetched commands. So a
lane is let go by (1) starting no new delivery, (2) finishing the ones in progress (their effects,
events and acks), then (3) closing the lane's channel: what was delivered but not started goes back
to the head of the queue, in order, to the next consumer. A crash is the same minus step 2; the
handlers are idempotent, so redelivered commands have no second effect.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from relay_log import get_logger

from relay_broker.broker import Broker
from relay_broker.lanes import assign
from relay_broker.rollcall import RollCall

log = get_logger(__name__)

OnMessage = Callable[[AbstractIncomingMessage], Awaitable[None]]


@dataclass
class Lane:
    number: int
    channel: AbstractChannel
    busy: int = 0
    draining: bool = False
    released: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)


class LaneConsumer:
    def __init__(self, broker: Broker, service: str, on_message: OnMessage, *, member: str | None = None) -> None:
        self._broker = broker
        self._service = service
        self._on_message = on_message
        self.member = member or f"{service}-{uuid.uuid4().hex[:10]}"
        self._lanes: dict[int, Lane] = {}
        self._releasing: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._stopped = False
        self.rollcall = RollCall(broker, service, self.member, self._membership_changed)

    @property
    def lanes(self) -> list[int]:
        """The lanes this instance consumes now (active, or waiting behind an instance letting go)."""
        return sorted(n for n, lane in self._lanes.items() if not lane.draining)

    async def start(self) -> None:
        await self.rollcall.start()
        await self._rebalance(self.rollcall.members)

    async def _membership_changed(self, members: list[str]) -> None:
        await self._rebalance(members)

    async def _rebalance(self, members: list[str]) -> None:
        async with self._lock:
            if self._stopped:
                return
            owners = assign(members, self._broker.topology.partitions)
            mine = {n for n, owner in owners.items() if owner == self.member}
            held = {n for n, lane in self._lanes.items() if not lane.draining}
            taking, letting_go = sorted(mine - set(self._lanes)), sorted(held - mine)
            for number in taking:
                await self._take(number)
            for number in letting_go:
                self._release_soon(number)
            if taking or letting_go:
                log.info("lanes.rebalanced", service=self._service, member=self.member, lanes=sorted(mine))

    async def _take(self, number: int) -> None:
        assert self._broker.connection is not None
        channel = await self._broker.connection.channel()
        await channel.set_qos(prefetch_count=self._broker.prefetch)
        lane = Lane(number, channel)
        lane.idle.set()
        queue = await self._broker.declare_service_queue(self._service, number, channel)
        self._lanes[number] = lane
        await queue.consume(functools.partial(self._deliver, lane))

    async def _deliver(self, lane: Lane, message: AbstractIncomingMessage) -> None:
        if lane.draining:
            # left unacked: it goes back to the head of the queue when the lane's channel closes
            if lane.released:
                await self._close(lane)  # closing failed (the broker was away) and the channel came back
            return
        lane.busy += 1
        lane.idle.clear()
        try:
            await self._on_message(message)
        finally:
            lane.busy -= 1
            if lane.busy == 0:
                lane.idle.set()

    def _release_soon(self, number: int) -> None:
        task = asyncio.create_task(self._release(number))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _release(self, number: int) -> None:
        lane = self._lanes.get(number)
        if lane is None or lane.draining:
            return
        lane.draining = True
        await lane.idle.wait()
        lane.released = True
        await self._close(lane)
        if self._lanes.get(number) is lane:
            del self._lanes[number]
        log.info("lanes.released", service=self._service, member=self.member, lane=number)
        await self._rebalance(self.rollcall.members)  # the membership may have turned back meanwhile

    async def _close(self, lane: Lane) -> None:
        try:
            await lane.channel.close()
        except Exception as exc:  # the connection is down: the broker requeues what the lane held
            log.warning("lanes.close_failed", lane=lane.number, error=type(exc).__name__)

    async def stop(self) -> None:
        """Leave: tell the other instances first (they line up for this one's lanes), then finish the
        commands in progress and let every lane go."""
        async with self._lock:
            self._stopped = True
        await self.rollcall.leave()
        for number in list(self._lanes):
            self._release_soon(number)
        if self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)
