"""Acks of a channel's deliveries, several in one `basic.ack multiple`.

A group-commit round answers its sends in one loop pass, and each of their commands was acked on its own:
one frame each, and for a quorum queue one settle (a Raft log entry) each in the broker. Measured on the
shared RabbitMQ: ~80-100 us of broker CPU per message acked one by one, ~10 with one multiple ack per
hundred (3,000 messages of a quorum queue). Here the handlers that finish in the same pass are acked by
one frame naming the highest of them with `multiple`.

A multiple ack settles every unsettled delivery up to its tag (on the broker's side, whatever this process
thinks), so one is sent only over a stretch of tags all finished here: RabbitMQ numbers a channel's
deliveries 1, 2, 3..., and the stretch starts right after the last tag settled. A handler whose tag cannot
join such a stretch (one below it is still running, or was never handled here, such as a delivery left for
the next consumer while a lane is let go) is acked on its own, as before. If some tag stays unsettled for
good, every later ack goes on its own (`MAX_SETTLED_BEYOND`), and nothing is held back.
"""

from __future__ import annotations

import asyncio
from typing import cast
from weakref import WeakKeyDictionary

import aiormq
from aiormq.abc import AbstractChannel

# tags settled one by one beyond an unsettled one; past this the channel gives up multiple acks
MAX_SETTLED_BEYOND = 4096


class ChannelAcks:
    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = cast(
            aiormq.Channel, channel
        )  # aiormq's Channel takes `wait`; its abstract base does not say so
        self._upto = 0  # every tag up to here is settled
        self._finished: set[int] = set()  # handled and to be acked, beyond `_upto`
        self._settled: set[int] = set()  # acked one by one, nacked or rejected, beyond `_upto`
        self._one_by_one = False

    async def ack(self, tag: int) -> None:
        if self._one_by_one:
            await self._channel.basic_ack(tag, wait=False)
            return
        self._finished.add(tag)
        await asyncio.sleep(0)  # the handlers finishing in this pass add theirs: one frame for them all
        if tag not in self._finished:
            return  # a multiple ack sent meanwhile covered it
        await self._advance()
        if tag in self._finished:  # a tag below it is not settled: no multiple ack may cover it
            self._finished.discard(tag)
            self._settle(tag)
            await self._channel.basic_ack(tag, wait=False)

    async def nack(self, tag: int, *, requeue: bool) -> None:
        self._settle(tag)
        await self._channel.basic_nack(tag, requeue=requeue, wait=False)
        await self._advance()  # the finished ones it held back

    async def reject(self, tag: int) -> None:
        self._settle(tag)
        await self._channel.basic_reject(tag, requeue=False, wait=False)
        await self._advance()

    def _settle(self, tag: int) -> None:
        if self._one_by_one:
            return
        self._settled.add(tag)
        if len(self._settled) > MAX_SETTLED_BEYOND:
            self._one_by_one = True
            self._settled.clear()

    async def _advance(self) -> None:
        if self._one_by_one:
            return
        highest = 0
        tag = self._upto + 1
        while tag in self._finished or tag in self._settled:
            if tag in self._finished:
                self._finished.discard(tag)
                highest = tag
            else:
                self._settled.discard(tag)
            tag += 1
        self._upto = tag - 1
        if highest:
            await self._channel.basic_ack(highest, multiple=True, wait=False)


class Acks:
    """The `ChannelAcks` of each channel (a lane's channel, renewed when the connection comes back)."""

    def __init__(self) -> None:
        self._channels: WeakKeyDictionary[AbstractChannel, ChannelAcks] = WeakKeyDictionary()

    def of(self, channel: AbstractChannel) -> ChannelAcks:
        acks = self._channels.get(channel)
        if acks is None:
            acks = self._channels[channel] = ChannelAcks(channel)
        return acks
