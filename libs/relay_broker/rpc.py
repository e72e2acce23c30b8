"""Request/reply over the commands exchange: `reply_to` + `correlation_id`, with a timeout."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from relay_contracts import Envelope, ErrorCode, RelayError
from relay_log import get_logger

from relay_broker.broker import Broker

log = get_logger(__name__)

# loop passes a reply takes from this process's socket to its waiting caller (read, frame, dispatch, set)
REPLY_HOPS = 8


async def _received_late(future: asyncio.Future[dict[str, Any]]) -> bool:
    """A busy event loop runs a timer in one pass but a reply only after several: a reply that reached this
    process before the timeout still counts (else the caller would hear UNAVAILABLE for an applied command)."""
    for _ in range(REPLY_HOPS):
        if future.done():
            return True
        await asyncio.sleep(0)
    return future.done()


class RpcClient:
    """`call` waits `timeout` for the answer. The command expires `settle` seconds (default and at most half
    the timeout) before that (AMQP expiration and `expiresAt`): a handler refuses it after its deadline, and
    a write it began just in time has `settle` seconds for its answer to come back. So a caller answered
    UNAVAILABLE at the timeout was told the truth: nothing was applied (SPEC §7).

    At most `max_in_flight` calls wait at once; more are answered UNAVAILABLE at once, unsent. An overloaded
    process sheds load instead of queueing it: a backlog would make answers come back later than their
    callers' timeouts."""

    def __init__(
        self, broker: Broker, *, timeout: float = 5.0, settle: float | None = None, max_in_flight: int = 512
    ) -> None:
        self._broker = broker
        self._timeout = timeout
        self._settle = settle
        self._max_in_flight = max_in_flight
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._queue: AbstractQueue | None = None

    async def start(self) -> None:
        assert self._broker.channel is not None
        self._queue = await self._broker.channel.declare_queue(exclusive=True, auto_delete=True)
        await self._queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            try:
                future.set_result(json.loads(message.body))
            except ValueError:
                future.set_result({"ok": False, "error": {"code": "INTERNAL", "message": "bad reply"}})

    async def send(self, envelope: Envelope) -> None:
        """Send a command that needs no answer (confirmed by the broker, handled when its service can)."""
        try:
            await self._broker.publish_command(envelope)
        except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            raise _unavailable(envelope, exc) from exc

    async def call(self, envelope: Envelope, *, timeout: float | None = None) -> Any:
        """Send a command and return its reply's `data`, or raise the RelayError it answered."""
        if self._queue is None:
            raise RuntimeError("rpc client not started")
        if len(self._pending) >= self._max_in_flight:
            raise RelayError(ErrorCode.UNAVAILABLE, "too many requests in flight; retry shortly")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        wait = timeout or self._timeout
        lifetime = wait - min(self._settle or wait, wait / 2)
        envelope = envelope.expiring_in(lifetime)
        self._pending[envelope.id] = future
        try:
            try:
                await self._broker.publish_command(envelope, reply_to=self._queue.name, expiration=lifetime)
            except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
                raise _unavailable(envelope, exc) from exc
            try:
                reply = await asyncio.wait_for(asyncio.shield(future), wait)
            except TimeoutError as exc:
                if not await _received_late(future):
                    raise RelayError(ErrorCode.UNAVAILABLE, f"{envelope.type} timed out") from exc
                reply = future.result()
        finally:
            self._pending.pop(envelope.id, None)
        if reply.get("ok"):
            return reply.get("data")
        raise RelayError.from_dict(reply.get("error") or {})


def _unavailable(envelope: Envelope, exc: BaseException) -> RelayError:
    """The caller hears UNAVAILABLE; the log keeps why the publish failed (closed channel, nack, ...)."""
    log.warning("rpc.publish_failed", command=envelope.type, error=type(exc).__name__, detail=str(exc)[:300])
    return RelayError(ErrorCode.UNAVAILABLE, "message broker unavailable")
