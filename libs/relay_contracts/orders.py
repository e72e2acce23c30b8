"""Commands and events of restaurant orders (SPEC §5, seed-004).

Commands travel on `relay.commands` (`order.create` …); events on `relay.events` keep seed-004's
wire names (`order.new`, `order.status.changed`, `order.item.status.changed`) and carry exactly
seed-004's payloads as their `data`. Money is an exact decimal, always a string on the wire ("15.50").
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

from relay_contracts.routing import event_key, interest_pattern

# command types (routing keys on relay.commands; the order service binds `order.#`)
CREATE_ORDER = "order.create"
ADD_ITEM = "order.item.add"
CONFIRM_ORDER = "order.confirm"
CANCEL_ORDER = "order.cancel"
SET_ITEM_STATUS = "order.item.set_status"
GET_ORDER = "order.get"
LIST_ORDERS = "order.list"

# event types (seed-004's event names)
ORDER_NEW = "order.new"
ORDER_STATUS_CHANGED = "order.status.changed"
ORDER_ITEM_STATUS_CHANGED = "order.item.status.changed"
ORDER_EVENTS = (ORDER_NEW, ORDER_STATUS_CHANGED, ORDER_ITEM_STATUS_CHANGED)

OrderStatus = Literal["DRAFT", "CONFIRMED", "IN_PROGRESS", "READY", "SERVED", "CANCELLED"]
ItemStatus = Literal["PENDING", "IN_PROGRESS", "READY", "SERVED", "CANCELLED"]
ORDER_STATUSES: tuple[str, ...] = ("DRAFT", "CONFIRMED", "IN_PROGRESS", "READY", "SERVED", "CANCELLED")


def restaurant_room(restaurant_id: str) -> str:
    """The wire room every order event of a restaurant goes to (the tenant is the restaurant)."""
    return f"restaurant:{restaurant_id}"


def event_routing_key(restaurant_id: str, event_type: str) -> str:
    return event_key(restaurant_id, "room", restaurant_room(restaurant_id), event_type)


def restaurant_interest(restaurant_id: str) -> str:
    """The binding a gateway replica needs while one of its sockets is in the restaurant's room."""
    return interest_pattern(restaurant_id, "room", restaurant_room(restaurant_id))


MAX_UNIT_PRICE = Decimal("1000000")
_AMOUNT = re.compile(r"^\d{1,7}(\.\d{1,2})?$")

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-:@.]+$")]
RequestId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]


def parse_money(value: object) -> str:
    """A non-negative amount with at most two decimals, as its canonical string ("15.5" -> "15.50").

    JSON numbers are accepted (seed-004's curl sends `15.50`) through their shortest repr, so the
    amount the client wrote is the amount stored; anything that is not a plain decimal is refused.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError('must be a decimal amount such as "15.50"')
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if not _AMOUNT.match(text):
        raise ValueError('must be a non-negative decimal amount with at most 2 decimals, such as "15.50"')
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already guarantees a decimal
        raise ValueError("not a decimal amount") from exc
    if amount > MAX_UNIT_PRICE:
        raise ValueError(f"must not exceed {MAX_UNIT_PRICE}")
    return str(amount.quantize(Decimal("0.01")))


MONEY_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": _AMOUNT.pattern},
        {"type": "number", "minimum": 0, "maximum": int(MAX_UNIT_PRICE)},
    ]
}
Money = Annotated[str, BeforeValidator(parse_money), WithJsonSchema(MONEY_SCHEMA)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateOrder(Strict):
    tableSessionId: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    requestId: RequestId | None = None


class NewItem(Strict):
    """The body of `POST /api/v1/orders/{id}/items`."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    qty: Annotated[int, Field(strict=True, ge=1, le=999)]
    unitPrice: Money
    notes: Annotated[str, StringConstraints(max_length=500)] | None = None


class AddItem(NewItem):
    orderId: Id
    requestId: RequestId | None = None


class ConfirmOrder(Strict):
    orderId: Id
    requestId: RequestId | None = None


class CancelOrder(ConfirmOrder):
    pass


class NewItemStatus(Strict):
    """The body of `POST /api/v1/orders/{id}/items/{itemId}/status`."""

    status: ItemStatus


class SetItemStatus(NewItemStatus):
    orderId: Id
    itemId: Id
    requestId: RequestId | None = None


class GetOrder(Strict):
    orderId: Id


class ListOrders(Strict):
    statuses: tuple[OrderStatus, ...] = ()
    limit: int = Field(default=100, ge=1, le=500)
