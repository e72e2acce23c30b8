"""Serving commands: decode, bind log context, run the handler, reply, ack after the effect."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError
from relay_contracts import Envelope, ErrorCode, RelayError
from relay_contracts.claims import Claims, Want
from relay_contracts.deadline import expired_error
from relay_log import bound_contextvars, get_logger

from relay_broker.acks import Acks
from relay_broker.broker import Broker
from relay_broker.lane_consumer import LaneConsumer

log = get_logger(__name__)

CommandHandler = Callable[[Envelope], Awaitable[Any]]
Observer = Callable[[str, float, str], None]  # (command type, seconds, outcome)


def _validation_error(exc: ValidationError) -> RelayError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    return RelayError(ErrorCode.VALIDATION_ERROR, f"{field or 'body'}: {first.get('msg')}", field=field or None)


async def _claimed(claims: Claims | None, envelope: Envelope) -> bool:
    """Whether a handler claimed this command before (a redelivery of a claimed command must be applied)."""
    if claims is None:
        return False
    try:
        return (await claims.claim([Want(envelope.id, start=False)]))[0]
    except RelayError:
        return False  # the store is down: the handler could not claim it now either


async def serve_commands(
    broker: Broker,
    service: str,
    routing_keys: list[str],
    handlers: dict[str, CommandHandler],
    *,
    observe: Observer | None = None,
    transient: tuple[type[BaseException], ...] = (),
    transient_backoff_seconds: float = 1.0,
    claims: Claims | None = None,
) -> LaneConsumer:
    """Consume the service's command lanes (`routing_keys` bound in each); each message's type picks
    its handler. Returns the running `LaneConsumer`: `stop()` it to leave gracefully (it lets the
    commands in hand finish).

    A command past its `expiresAt` is dropped without running its handler: its caller has been
    answered UNAVAILABLE, which means "not applied" (SPEC §7) — unless it comes back redelivered and
    `claims` say a handler claimed it `applied` before (then that handler died before its ack: the
    handler runs again and its write, idempotent, lands once; relay_contracts.claims). `transient` names the errors of a
    dependency that is down (say, the database): a caller who waits is answered `UNAVAILABLE` at
    once and the command is dropped (the caller retries with its idempotency key); a command nobody
    waits for goes back to the queue after a pause and lands when the dependency returns.
    """

    async def reply(message: AbstractIncomingMessage, body: dict[str, Any]) -> None:
        if message.reply_to:
            await broker.reply(message.reply_to, message.correlation_id, json.dumps(body, default=str).encode())

    acks = Acks()

    async def on_message(message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        settle = acks.of(message.channel)
        tag = message.delivery_tag or 0
        try:
            envelope = Envelope.from_bytes(message.body)
        except ValidationError:
            log.error("command.undecodable", message_id=message.message_id)
            await settle.reject(tag)  # to the dead-letter exchange, with its reason
            return
        handler = handlers.get(envelope.type)
        with bound_contextvars(
            correlation_id=envelope.correlationId, tenant=envelope.tenant, command=envelope.type, command_id=envelope.id
        ):
            if handler is None:
                log.error("command.unknown_type")
                await settle.reject(tag)
                return
            if envelope.expired() and not (message.redelivered and await _claimed(claims, envelope)):
                # info: under overload there are many; the metric (outcome "expired") counts them all
                log.info("command.expired", expires_at=envelope.expiresAt, redelivered=message.redelivered)
                await reply(message, {"ok": False, "error": expired_error(envelope).to_dict()})
                await settle.ack(tag)
                if observe is not None:
                    observe(envelope.type, time.perf_counter() - started, "expired")
                return
            outcome = "ok"
            try:
                result = await handler(envelope)
                await reply(message, {"ok": True, "data": result})
                await settle.ack(tag)
                log.debug("command.handled")
            except (RelayError, ValidationError) as exc:
                error = _validation_error(exc) if isinstance(exc, ValidationError) else exc
                outcome = error.code.value
                log.info("command.refused", code=error.code.value, reason=error.message)
                await reply(message, {"ok": False, "error": error.to_dict()})
                await settle.ack(tag)
            except transient as exc:
                outcome = ErrorCode.UNAVAILABLE.value
                log.warning("command.dependency_down", error=type(exc).__name__, redelivered=message.redelivered)
                if message.reply_to:
                    # the caller is told "not applied" now, so the command must never land later
                    down = RelayError(ErrorCode.UNAVAILABLE, "a dependency of the service is down; retry shortly")
                    await reply(message, {"ok": False, "error": down.to_dict()})
                    await settle.ack(tag)
                else:
                    await asyncio.sleep(transient_backoff_seconds)  # do not burn the delivery limit in a hot loop
                    await settle.nack(tag, requeue=True)
            except Exception:
                # a bug or an unknown failure: requeue; the quorum queue's delivery limit dead-letters it
                outcome = "error"
                log.exception("command.failed", redelivered=message.redelivered)
                await settle.nack(tag, requeue=True)
            finally:
                if observe is not None:
                    observe(envelope.type, time.perf_counter() - started, outcome)

    await broker.declare_service_queues(service, routing_keys)
    consumer = LaneConsumer(broker, service, on_message)
    await consumer.start()
    return consumer
