"""Registers socket event handlers with validation, log context, metrics and SPEC §7 errors.

A handler is `async def h(gw, conn, payload) -> dict | None`; what it returns is the ack.
Bad input gets the ack `{success: false, error: {code, message, field?}}` and an `error` event,
and never reaches the handler.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from relay_contracts import ErrorCode, RelayError
from relay_log import bound_contextvars, get_logger, new_correlation_id
from relay_ops.metrics import ERRORS

from relay_gateway import metrics
from relay_gateway.context import Connection, Gateway
from relay_gateway.inbound import check_inbound
from relay_gateway.packets import GuardedServer
from relay_gateway.speaks import spoke

log = get_logger(__name__)

Handler = Callable[[Gateway, Connection, Any], Awaitable[dict[str, Any] | None]]


def validation_error(exc: ValidationError) -> RelayError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    return RelayError(ErrorCode.VALIDATION_ERROR, f"{field or 'payload'}: {first.get('msg')}", field=field or None)


def _encoded_size(data: Any) -> int:
    """The payload's size as JSON on the wire (binary attachments count their bytes)."""
    if data is None:
        return 0
    if isinstance(data, bytes | bytearray):
        return len(data)
    try:
        return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return 0  # binary parts inside: the transport's frame limit bounds those


def failure(error: RelayError) -> dict[str, Any]:
    return {"success": False, "error": error.to_dict(), "message": error.message}


@dataclass(frozen=True)
class Registration:
    """One inbound socket event, as the generated reference (docs/reference.md) lists it."""

    feature: str
    namespace: str
    event: str
    model: type[BaseModel] | None
    authenticated: bool
    doc: str
    limit: str | None = None  # the rate-limit rule it counts against


class SocketRouter:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.feature = "core"  # bootstrap sets it while a feature registers its handlers
        self.registry: list[Registration] = []

    def on(
        self,
        event: str,
        model: type[BaseModel] | None = None,
        *,
        namespace: str = "/",
        authenticated: bool = True,
        limit: str | None = None,
        inline: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register `fn` for `event`; `limit` names a rate-limit rule (ratelimit.py) each call counts against.
        `inline`: `fn` only answers and waits for no I/O, so it runs in the socket's read step (packets.py)."""

        def register(fn: Handler) -> Handler:
            feature = self.feature

            async def handle(sid: str, data: Any = None, *_: Any) -> dict[str, Any] | None:
                metrics.EVENTS_IN.labels(namespace, event).inc()
                conn = self.gw.connections.get(sid)
                principal = conn.principal if conn else None
                cid = data.get("correlationId") if isinstance(data, dict) else None
                with bound_contextvars(
                    sid=sid,
                    event=event,
                    user_id=principal.user_id if principal else None,
                    tenant=principal.tenant if principal else None,
                    correlation_id=cid if isinstance(cid, str) and len(cid) <= 64 else new_correlation_id(),
                ):
                    try:
                        if conn is None or (authenticated and principal is None):
                            raise RelayError(ErrorCode.AUTH_REQUIRED, f"authenticate before '{event}'")
                        for hook in self.gw.on_activity:
                            hook(self.gw, conn, event)
                        await spoke(self.gw, conn, feature)
                        if limit is not None:
                            await self.gw.limit(limit, principal, fallback=sid)
                        if _encoded_size(data) > self.gw.settings.max_packet_bytes:
                            raise RelayError(
                                ErrorCode.PAYLOAD_TOO_LARGE,
                                f"'{event}' payload exceeds {self.gw.settings.max_packet_bytes} bytes",
                            )
                        check_inbound(data)
                        payload = data
                        if model is not None:
                            if isinstance(data, dict):
                                data = {k: v for k, v in data.items() if k != "correlationId"}
                            payload = model.model_validate(data if data is not None else {})
                        return await fn(self.gw, conn, payload)
                    except ValidationError as exc:
                        return await self._refuse(sid, namespace, validation_error(exc))
                    except RelayError as exc:
                        return await self._refuse(sid, namespace, exc)
                    except Exception:
                        log.exception("socket.handler_failed")
                        return await self._refuse(sid, namespace, RelayError(ErrorCode.INTERNAL, "internal error"))

            self.gw.sio.on(event, handle, namespace=namespace)
            if inline and isinstance(self.gw.sio, GuardedServer):
                self.gw.sio.inline_events.add((namespace, event))
            summary = next(iter((fn.__doc__ or "").strip().splitlines()), "")
            self.registry.append(Registration(feature, namespace, event, model, authenticated, summary, limit))
            return fn

        return register

    async def _refuse(self, sid: str, namespace: str, error: RelayError) -> dict[str, Any]:
        log.info("socket.refused", code=error.code.value, reason=error.message)
        ERRORS.labels("gateway", error.code.value).inc()
        body = {"code": error.code.value, "message": error.message, **error.details}
        if error.field:
            body["field"] = error.field
        await self.gw.sio.emit("error", body, to=sid, namespace=namespace)
        return failure(error)
