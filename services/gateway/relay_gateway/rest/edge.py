"""What every REST route shares: correlation ids, the caller, bodies, SPEC §7 error answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from relay_auth import AuthError, Principal
from relay_contracts import ErrorCode, RelayError
from relay_log import bind_contextvars, clear_contextvars, get_contextvars, get_logger, new_correlation_id
from relay_ops.metrics import ERRORS
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay_gateway.context import Gateway
from relay_gateway.sockets.router import validation_error

log = get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
CORRELATION_HEADERS = (b"x-correlation-id", b"x-request-id")


class CorrelationMiddleware:
    """Binds a correlation id (from X-Correlation-ID / X-Request-ID or new) and echoes it back."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or [])
        raw = next((incoming[h] for h in CORRELATION_HEADERS if h in incoming), b"")
        cid = raw.decode("latin-1")[:64] if raw else new_correlation_id()
        clear_contextvars()
        bind_contextvars(service=self.service, correlation_id=cid, path=scope.get("path"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-correlation-id", cid.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_id)


def error_response(error: RelayError) -> JSONResponse:
    body = {"error": error.to_dict(), "message": error.message, "statusCode": error.http_status}
    headers = {}
    if "retryAfterMs" in error.details:
        headers["Retry-After"] = str(max(1, -(-int(error.details["retryAfterMs"]) // 1000)))
    return JSONResponse(body, status_code=error.http_status, headers=headers)


async def relay_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RelayError)
    log.info("rest.refused", code=exc.code.value, reason=exc.message)
    ERRORS.labels("gateway", exc.code.value).inc()
    return error_response(exc)


async def auth_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    return error_response(RelayError(exc.code, exc.message))


async def redis_down_handler(request: Request, exc: Exception) -> JSONResponse:
    """Redis (sessions, rate limits, presence reads) unreachable or failing over: fail fast, retry later."""
    log.warning("rest.redis_unavailable", error=str(exc))
    return await relay_error_handler(request, RelayError(ErrorCode.UNAVAILABLE, "unavailable (Redis), retry shortly"))


async def unexpected_error_handler(_: Request, exc: Exception) -> JSONResponse:
    log.error("rest.failed", exc_info=exc)
    return error_response(RelayError(ErrorCode.INTERNAL, "internal error"))


E = TypeVar("E")


def documented(*, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None) -> Callable[[E], E]:
    """Names a route's body and query schemas so the generated reference (docs/reference.md) shows them."""

    def mark(endpoint: E) -> E:
        endpoint.__relay_body__ = body  # type: ignore[attr-defined]
        endpoint.__relay_query__ = query  # type: ignore[attr-defined]
        return endpoint

    return mark


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def caller(request: Request, *, limit: str | None = None, query_token: bool = False) -> Principal:
    """The authenticated caller. Every write counts against `rest_write`, plus `limit` when given;
    `query_token` also accepts `?token=` (for URLs a browser loads itself, like an <img src>)."""
    gw = gateway(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = {"token": request.query_params["token"]} if query_token and "token" in request.query_params else {}
    principal = await gw.auth.require(None, headers, query)
    bind_contextvars(user_id=principal.user_id, tenant=principal.tenant)
    if request.method in WRITE_METHODS:
        await gw.limit("rest_write", principal)
    if limit is not None:
        await gw.limit(limit, principal)
    return principal


async def read_body(request: Request, model: type[M], *, max_bytes: int) -> M:
    """Parse and validate a JSON body; too big → PAYLOAD_TOO_LARGE, bad → VALIDATION_ERROR."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise RelayError(ErrorCode.PAYLOAD_TOO_LARGE, f"body exceeds {max_bytes} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise RelayError(ErrorCode.PAYLOAD_TOO_LARGE, f"body exceeds {max_bytes} bytes")
    try:
        data: Any = json.loads(body or b"{}")
    except ValueError as exc:
        raise RelayError(ErrorCode.VALIDATION_ERROR, "body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise RelayError(ErrorCode.VALIDATION_ERROR, "body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def read_query(request: Request, model: type[M]) -> M:
    """Validate the query string against `model`; bad → VALIDATION_ERROR naming the parameter."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise validation_error(exc) from exc


def correlation_id() -> str | None:
    value = get_contextvars().get("correlation_id")
    return str(value) if value else None
