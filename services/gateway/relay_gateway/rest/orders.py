"""seed-004 REST: `/api/v1/orders` for waiters, kitchen and managers of the caller's restaurant.

Roles are checked by the order service (it is the authority); here the routes authenticate,
validate the body with the contract models and pass a request id so retries have one effect.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from relay_auth import Principal
from relay_contracts import ErrorCode, RelayError
from relay_contracts import orders as o
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay_gateway.rest.edge import caller, documented, gateway, read_body
from relay_gateway.sockets.router import validation_error

IDEMPOTENCY_HEADERS = ("idempotency-key", "x-request-id")
MAX_BODY_BYTES = 16 * 1024


class CreateOrderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tableSessionId: str = Field(min_length=1, max_length=128)


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: tuple[o.OrderStatus, ...] = ()  # repeated or comma-separated, case-insensitive
    limit: int = Field(default=100, ge=1, le=500)


async def _restaurant_caller(request: Request) -> Principal:
    principal = await caller(request)
    if not principal.has_tenant_claim:
        raise RelayError(ErrorCode.PERMISSION_DENIED, "orders need a token with a restaurantId claim")
    return principal


def _request_id(request: Request) -> str:
    """The client's idempotency key, or one of our own so a broker redelivery is still applied once."""
    for header in IDEMPOTENCY_HEADERS:
        value = request.headers.get(header, "").strip()
        if value:
            if len(value) > 128 or not value.isprintable() or " " in value:
                raise RelayError(ErrorCode.VALIDATION_ERROR, f"{header} must be 1-128 visible characters")
            return value
    return f"req-{uuid.uuid4()}"


async def _call(request: Request, principal: Principal, command: str, data: dict[str, Any]) -> Any:
    return await gateway(request).bus.call(principal, command, data)


@documented(body=CreateOrderBody)
async def create_order(request: Request) -> JSONResponse:
    """Open a DRAFT order for a table (WAITER, MANAGER); 201 with the order. `Idempotency-Key` makes retries safe."""
    principal = await _restaurant_caller(request)
    body = await read_body(request, CreateOrderBody, max_bytes=MAX_BODY_BYTES)
    data = {"tableSessionId": body.tableSessionId, "requestId": _request_id(request)}
    return JSONResponse(await _call(request, principal, o.CREATE_ORDER, data), status_code=201)


@documented(body=o.NewItem)
async def add_item(request: Request) -> JSONResponse:
    """Add an item to a DRAFT order (WAITER, MANAGER); `unitPrice` exact decimal; 201 with the item."""
    principal = await _restaurant_caller(request)
    body = await read_body(request, o.NewItem, max_bytes=MAX_BODY_BYTES)
    data = {**body.model_dump(), "orderId": request.path_params["order_id"], "requestId": _request_id(request)}
    return JSONResponse(await _call(request, principal, o.ADD_ITEM, data), status_code=201)


async def confirm_order(request: Request) -> JSONResponse:
    """Confirm a DRAFT order (WAITER, MANAGER); emits `order.new` and `order.status.changed`; 409 if not DRAFT."""
    return await _order_command(request, o.CONFIRM_ORDER)


async def cancel_order(request: Request) -> JSONResponse:
    """Cancel an order and its unserved items (WAITER, MANAGER); 409 if already SERVED or CANCELLED."""
    return await _order_command(request, o.CANCEL_ORDER)


async def _order_command(request: Request, command: str) -> JSONResponse:
    principal = await _restaurant_caller(request)
    data = {"orderId": request.path_params["order_id"], "requestId": _request_id(request)}
    return JSONResponse(await _call(request, principal, command, data))


@documented(body=o.NewItemStatus)
async def set_item_status(request: Request) -> JSONResponse:
    """Move an item one step (KITCHEN, MANAGER); the order follows its items; 409 with the current state if illegal."""
    principal = await _restaurant_caller(request)
    body = await read_body(request, o.NewItemStatus, max_bytes=MAX_BODY_BYTES)
    data = {
        "orderId": request.path_params["order_id"],
        "itemId": request.path_params["item_id"],
        "status": body.status,
        "requestId": _request_id(request),
    }
    return JSONResponse(await _call(request, principal, o.SET_ITEM_STATUS, data))


async def get_order(request: Request) -> JSONResponse:
    """One order of the caller's restaurant with its items and exact `total`; 404 for any other."""
    principal = await _restaurant_caller(request)
    return JSONResponse(await _call(request, principal, o.GET_ORDER, {"orderId": request.path_params["order_id"]}))


@documented(query=ListQuery)
async def list_orders(request: Request) -> JSONResponse:
    """Orders of the caller's restaurant, newest first; `?status=CONFIRMED,IN_PROGRESS` filters."""
    principal = await _restaurant_caller(request)
    raw = request.query_params.getlist("status")
    statuses = tuple(s.strip().upper() for value in raw for s in value.split(",") if s.strip())
    try:
        query = ListQuery.model_validate({"status": statuses, "limit": request.query_params.get("limit", 100)})
    except ValidationError as exc:
        error = validation_error(exc)
        error.field = "status" if (error.field or "").startswith("status") else error.field
        raise error from exc
    data = {"statuses": query.status, "limit": query.limit}
    return JSONResponse(await _call(request, principal, o.LIST_ORDERS, data))


ROUTES = [
    Route("/api/v1/orders", create_order, methods=["POST"]),
    Route("/api/v1/orders", list_orders, methods=["GET"]),
    Route("/api/v1/orders/{order_id}", get_order, methods=["GET"]),
    Route("/api/v1/orders/{order_id}/items", add_item, methods=["POST"]),
    Route("/api/v1/orders/{order_id}/confirm", confirm_order, methods=["POST"]),
    Route("/api/v1/orders/{order_id}/cancel", cancel_order, methods=["POST"]),
    Route("/api/v1/orders/{order_id}/items/{item_id}/status", set_item_status, methods=["POST"]),
]
