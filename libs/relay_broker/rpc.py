"""Request/reply over the commands exchange: `reply_to` + `correlation_id`, with a timeout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from prometheus_client import Counter
from relay_contracts import Envelope, ErrorCode, RelayError
from relay_contracts.claims import APPLIED, CANCELLED, Claims
from relay_log import get_logger

from relay_broker.broker import Broker

log = get_logger(__name__)

# after the timer, how long a caller waits for the reply of a command its handler claimed `applied`
CLAIMED_WAIT_SECONDS = 30.0
CLAIM_RETRY_SECONDS = 1.0  # while the claims store cannot be reached, how often the caller asks again

CLAIMED_LATE = Counter(
    "relay_rpc_claimed_late_total",
    "Calls whose timer fired after their handler had claimed the command: answered when the reply came, not 503",
)

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
    the timeout) before that (`expiresAt`): a handler refuses it after its deadline.

    When the timer fires without a reply, the caller and the handler settle the race by claims
    (relay_contracts.claims): the caller claims the command `cancelled`; if that wins it answers UNAVAILABLE
    and no handler will apply it (SPEC §7: UNAVAILABLE means not applied). If a handler claimed it `applied`
    first, the caller keeps waiting for the reply, up to `claimed_wait` more seconds; if even then no reply has
    come (the handler's process died and the command waits for its redelivery), the caller is answered
    INTERNAL with `outcome: "unknown"`: the command may be applied, and a retry with the same idempotency key
    (`clientMessageId`, `Idempotency-Key`) tells which. When the claims store cannot be reached the caller
    cannot know either: it keeps trying to cancel while it waits, and never answers UNAVAILABLE unless its
    cancel wins. Without `claims` the timer answers UNAVAILABLE on its own (the deadline alone guards it).

    At most `max_in_flight` calls wait at once; more are answered UNAVAILABLE at once, unsent. An overloaded
    process sheds load instead of queueing it: a backlog would make answers come back later than their
    callers' timeouts."""

    def __init__(
        self,
        broker: Broker,
        *,
        timeout: float = 5.0,
        settle: float | None = None,
        max_in_flight: int = 512,
        claims: Claims | None = None,
        claimed_wait: float = CLAIMED_WAIT_SECONDS,
    ) -> None:
        self._broker = broker
        self._timeout = timeout
        self._settle = settle
        self._max_in_flight = max_in_flight
        self._claims = claims
        self._claimed_wait = claimed_wait
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._queue: AbstractQueue | None = None

    async def start(self) -> None:
        assert self._broker.channel is not None
        # `<prefix>.replies.<token>`, a fresh token after every reconnect (private_queues.py): `call` reads the
        # name it hands out as `reply_to` each time
        self._queue = await self._broker.channel.declare_queue(
            f"{self._broker.topology.prefix}.replies", exclusive=True, auto_delete=True
        )
        # a plain function: aio-pika runs it from a loop callback instead of a task of its own per reply
        # (its type says coroutine function only; aio_pika.tools.create_task takes both)
        on_reply = cast(Callable[[AbstractIncomingMessage], Awaitable[None]], self._on_reply)
        await self._queue.consume(on_reply, no_ack=True)

    def _on_reply(self, message: AbstractIncomingMessage) -> None:
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
        # with claims, a command claimed just before its deadline must outlive it in the queue: if its handler
        # dies, the redelivery applies it (the broker would drop it at its expiration)
        expiration = lifetime if self._claims is None else wait + self._claimed_wait
        self._pending[envelope.id] = future
        queue = self._queue
        try:
            # the reply queue takes a new name at each reconnect (private_queues.py), and the command channel can
            # be restored before the reply queue's: wait for the latter, so that `reply_to` names a queue that is
            await self._broker.restored(queue.channel)
            reply_to = queue.name
            try:
                await self._broker.publish_command(envelope, reply_to=reply_to, expiration=expiration)
            except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
                raise _unavailable(envelope, exc) from exc
            try:
                reply = await asyncio.wait_for(asyncio.shield(future), wait)
            except TimeoutError as exc:
                if await _received_late(future):
                    reply = future.result()
                elif self._claims is None:
                    raise RelayError(ErrorCode.UNAVAILABLE, f"{envelope.type} timed out") from exc
                else:
                    reply = await self._settle_by_claim(envelope, future, self._claims, lambda: queue.name != reply_to)
        finally:
            self._pending.pop(envelope.id, None)
        if reply.get("ok"):
            return reply.get("data")
        raise RelayError.from_dict(reply.get("error") or {})

    async def _settle_by_claim(
        self,
        envelope: Envelope,
        future: asyncio.Future[dict[str, Any]],
        claims: Claims,
        reply_lost: Callable[[], bool],
    ) -> dict[str, Any]:
        """The timer fired with no reply: UNAVAILABLE only if our `cancelled` claim holds; else wait on, unless
        `reply_lost` says the queue the reply was sent to is gone (a reconnect renamed ours): it cannot come."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._claimed_wait
        fate: str | None = None
        counted = lost = False
        while True:
            if fate != APPLIED:
                try:
                    fate = await claims.cancel(envelope.id)
                except Exception as exc:  # the store is down: the fate is unknown, ask again while waiting
                    log.warning("rpc.claim_unreachable", command=envelope.type, error=type(exc).__name__)
                    fate = None
            if future.done():  # a reply that came meanwhile is the truth, whatever the claim says
                return future.result()
            if fate == CANCELLED:
                raise RelayError(ErrorCode.UNAVAILABLE, f"{envelope.type} timed out; nothing was changed")
            if fate == APPLIED and reply_lost():
                lost = True  # sent before a connection loss, handled after it: its reply went nowhere
                break
            remaining = give_up - loop.time()
            if remaining <= 0:
                break
            if fate == APPLIED and not counted:
                CLAIMED_LATE.inc()
                counted = True
            try:
                # an applied claim: its reply is on its way (unless a reconnect loses it: looked at every
                # CLAIM_RETRY_SECONDS); an unknown fate: ask the store again soon
                return await asyncio.wait_for(asyncio.shield(future), min(remaining, CLAIM_RETRY_SECONDS))
            except TimeoutError:
                continue
        log.error("rpc.outcome_unknown", command=envelope.type, claim=fate or "unreachable", reply_lost=lost)
        raise RelayError(
            ErrorCode.INTERNAL,
            f"{envelope.type} was taken but its result did not come back in time; it may be applied: "
            "retry with the same idempotency key to learn its outcome",
            outcome="unknown",
            commandId=envelope.id,
        )


def _unavailable(envelope: Envelope, exc: BaseException) -> RelayError:
    """The caller hears UNAVAILABLE; the log keeps why the publish failed (closed channel, nack, ...)."""
    log.warning("rpc.publish_failed", command=envelope.type, error=type(exc).__name__, detail=str(exc)[:300])
    return RelayError(ErrorCode.UNAVAILABLE, "message broker unavailable")
