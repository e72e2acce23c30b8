"""Which instances of a service are alive, learnt over the broker itself (no other dependency).

Each instance publishes `{member, leaving}` on `<prefix>.members` (routing key: the service) every
`every` seconds and hears the others through an exclusive queue. A member is alive while it was heard
within `dead_after`; one that says it is leaving is dropped at once, so its lanes are taken over
before it lets go of them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from relay_log import get_logger

from relay_broker.broker import Broker

log = get_logger(__name__)

OnChange = Callable[[list[str]], Awaitable[None]]


class RollCall:
    def __init__(
        self,
        broker: Broker,
        service: str,
        member: str,
        on_change: OnChange,
        *,
        every: float = 1.0,
        dead_after: float = 3.5,
    ) -> None:
        self._broker = broker
        self._service = service
        self.member = member
        self._on_change = on_change
        self._every = every
        self._dead_after = dead_after
        self._seen: dict[str, float] = {member: time.monotonic()}
        self._view: list[str] = [member]
        self._task: asyncio.Task[None] | None = None

    @property
    def members(self) -> list[str]:
        return list(self._view)

    async def start(self) -> None:
        assert self._broker.channel is not None
        queue = await self._broker.channel.declare_queue(
            f"{self._broker.topology.prefix}.members.{self._service}", exclusive=True, auto_delete=True
        )
        await queue.bind(self._broker.exchanges[self._broker.topology.members], self._service)
        await queue.consume(self._heard, no_ack=True)
        self._task = asyncio.create_task(self._beat(), name=f"rollcall-{self._service}")

    async def _announce(self, leaving: bool = False) -> None:
        body = json.dumps({"member": self.member, "leaving": leaving}).encode()
        exchange = self._broker.exchanges[self._broker.topology.members]
        await exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT), routing_key=self._service
        )

    async def _beat(self) -> None:
        while True:
            try:
                await self._announce()
            except Exception as exc:  # the broker is away: robust reconnect brings us back
                log.warning("rollcall.announce_failed", error=type(exc).__name__)
            self._seen[self.member] = time.monotonic()
            try:
                # every beat, not only on a change: an attempt that failed (broker away) is retried
                await self._refresh(always=True)
            except Exception:
                log.exception("rollcall.refresh_failed", service=self._service)
            await asyncio.sleep(self._every)

    async def _heard(self, message: AbstractIncomingMessage) -> None:
        try:
            body = json.loads(message.body)
            member, leaving = str(body["member"]), bool(body.get("leaving"))
        except (ValueError, KeyError, TypeError):
            return
        if member == self.member:
            return
        if leaving:
            self._seen.pop(member, None)
        else:
            self._seen[member] = time.monotonic()
        await self._refresh()

    async def _refresh(self, *, always: bool = False) -> None:
        now = time.monotonic()
        for member, at in list(self._seen.items()):
            if member != self.member and now - at > self._dead_after:
                del self._seen[member]
        view = sorted(self._seen)
        if view != self._view:
            log.info("rollcall.changed", service=self._service, members=view)
            self._view = view
            await self._on_change(view)
        elif always:
            await self._on_change(view)

    async def leave(self) -> None:
        """Say goodbye (the others take this member's lanes now) and stop announcing."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        try:
            await self._announce(leaving=True)
        except Exception as exc:
            log.warning("rollcall.goodbye_failed", error=type(exc).__name__)
