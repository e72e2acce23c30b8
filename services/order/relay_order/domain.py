"""Pure rules of orders: who may do what, the status machines, the order status derived from items,
money totals, and seed-004's public shapes. No storage, broker or HTTP in here."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from relay_contracts import ErrorCode, RelayError
from relay_contracts import orders as o

# order statuses
DRAFT, CONFIRMED, IN_PROGRESS, READY, SERVED, CANCELLED = o.ORDER_STATUSES
# item statuses
PENDING = "PENDING"

ORDER_RANK = {DRAFT: 0, CONFIRMED: 1, IN_PROGRESS: 2, READY: 3, SERVED: 4}

ITEM_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({IN_PROGRESS, CANCELLED}),
    IN_PROGRESS: frozenset({READY, CANCELLED}),
    READY: frozenset({SERVED, CANCELLED}),
    SERVED: frozenset(),
    CANCELLED: frozenset(),
}
# orders move DRAFT -> CONFIRMED by confirm; afterwards their status follows their items
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({CONFIRMED, CANCELLED}),
    CONFIRMED: frozenset({IN_PROGRESS, READY, SERVED, CANCELLED}),
    IN_PROGRESS: frozenset({READY, SERVED, CANCELLED}),
    READY: frozenset({SERVED, CANCELLED}),
    SERVED: frozenset(),
    CANCELLED: frozenset(),
}

# what each role may do (role names compared lower-cased)
WAITER, KITCHEN, MANAGER = "waiter", "kitchen", "manager"
CREATE, ADD_ITEM, CONFIRM, CANCEL, MOVE_ITEM, READ = "create", "add_item", "confirm", "cancel", "move_item", "read"
PERMISSIONS: dict[str, frozenset[str]] = {
    WAITER: frozenset({CREATE, ADD_ITEM, CONFIRM, CANCEL, READ}),
    KITCHEN: frozenset({MOVE_ITEM, READ}),
    MANAGER: frozenset({CREATE, ADD_ITEM, CONFIRM, CANCEL, MOVE_ITEM, READ}),
}


def require(roles: tuple[str, ...] | list[str], action: str) -> None:
    if not any(action in PERMISSIONS.get(r.lower(), ()) for r in roles):
        raise RelayError(ErrorCode.PERMISSION_DENIED, f"your role may not {action.replace('_', ' ')} orders")


@dataclass(frozen=True)
class Item:
    id: str
    name: str
    qty: int
    unitPrice: str
    status: str
    notes: str | None
    createdAt: str
    updatedAt: str

    @property
    def subtotal(self) -> Decimal:
        return Decimal(self.unitPrice) * self.qty


@dataclass(frozen=True)
class Order:
    orderId: str
    restaurantId: str
    tableSessionId: str
    status: str
    createdAt: str
    updatedAt: str
    createdBy: str
    items: tuple[Item, ...] = ()
    version: int = 0

    @property
    def total(self) -> Decimal:
        return sum((i.subtotal for i in self.items if i.status != CANCELLED), Decimal("0"))

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        raise RelayError(ErrorCode.NOT_FOUND, f"item {item_id} not found in order {self.orderId}", field="itemId")


@dataclass(frozen=True)
class Change:
    """The new order and the events its change announces, in the order they happened."""

    order: Order
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def conflict(order: Order, message: str, *, item: Item | None = None) -> RelayError:
    """409 carrying the current state, so the client can show what is true now."""
    current: dict[str, Any] = {"orderId": order.orderId, "status": order.status}
    if item is not None:
        current.update(itemId=item.id, itemStatus=item.status)
    return RelayError(ErrorCode.CONFLICT, message, current=current)


def new_order(order_id: str, tenant: str, table_session_id: str, user: str, now: str) -> Order:
    return Order(order_id, tenant, table_session_id, DRAFT, now, now, user)


def add_item(order: Order, item: Item) -> Change:
    if order.status != DRAFT:
        raise conflict(order, f"items can only be added to a DRAFT order (this one is {order.status})")
    return Change(replace(order, items=(*order.items, item), updatedAt=item.createdAt))


def confirm(order: Order, now: str) -> Change:
    if order.status != DRAFT:
        raise conflict(order, f"only a DRAFT order can be confirmed (this one is {order.status})")
    if not order.items:
        raise conflict(order, "an order without items cannot be confirmed")
    confirmed = replace(order, status=CONFIRMED, updatedAt=now)
    return Change(
        confirmed,
        [(o.ORDER_NEW, order_new_payload(confirmed)), (o.ORDER_STATUS_CHANGED, status_payload(order, CONFIRMED, now))],
    )


def cancel(order: Order, now: str) -> Change:
    """Cancel the order and whatever of it is not served yet. A draft was never announced, so its
    cancellation is silent; a confirmed order's screens see each item and then the order cancelled."""
    if order.status in (SERVED, CANCELLED):
        raise conflict(order, f"the order is already {order.status}")
    events: list[tuple[str, dict[str, Any]]] = []
    items = []
    for item in order.items:
        if CANCELLED in ITEM_TRANSITIONS[item.status]:
            if order.status != DRAFT:
                events.append((o.ORDER_ITEM_STATUS_CHANGED, item_status_payload(order, item, CANCELLED, now)))
            item = replace(item, status=CANCELLED, updatedAt=now)
        items.append(item)
    if order.status != DRAFT:
        events.append((o.ORDER_STATUS_CHANGED, status_payload(order, CANCELLED, now)))
    return Change(replace(order, status=CANCELLED, items=tuple(items), updatedAt=now), events)


def derived_status(order: Order) -> str:
    """The order status its items imply; never behind where the order already is."""
    if order.status in (DRAFT, CANCELLED, SERVED):
        return order.status
    active = [i.status for i in order.items if i.status != CANCELLED]
    if not active:
        return CANCELLED
    if all(s == SERVED for s in active):
        implied = SERVED
    elif all(s in (READY, SERVED) for s in active):
        implied = READY
    elif any(s != PENDING for s in active):
        implied = IN_PROGRESS
    else:
        implied = CONFIRMED
    # a cancelled item may make the rest look less advanced; the order does not move back
    if implied != CANCELLED and ORDER_RANK[implied] < ORDER_RANK[order.status]:
        return order.status
    return implied


def set_item_status(order: Order, item_id: str, new: str, now: str) -> Change:
    item = order.item(item_id)
    if order.status == DRAFT:
        raise conflict(order, "the order is not confirmed yet", item=item)
    if order.status in (SERVED, CANCELLED):
        raise conflict(order, f"the order is {order.status}", item=item)
    if new not in ITEM_TRANSITIONS[item.status]:
        raise conflict(order, f"item cannot move from {item.status} to {new}", item=item)
    moved = replace(item, status=new, updatedAt=now)
    changed = replace(order, items=tuple(moved if i.id == item_id else i for i in order.items), updatedAt=now)
    events: list[tuple[str, dict[str, Any]]] = [
        (o.ORDER_ITEM_STATUS_CHANGED, item_status_payload(order, item, new, now))
    ]
    status = derived_status(changed)
    if status != order.status:
        if status not in ORDER_TRANSITIONS[order.status]:  # pragma: no cover - derivation only moves forward
            raise conflict(order, f"order cannot move from {order.status} to {status}", item=item)
        changed = replace(changed, status=status)
        events.append((o.ORDER_STATUS_CHANGED, status_payload(order, status, now)))
    return Change(changed, events)


# seed-004's shapes -----------------------------------------------------------------------------


def item_payload(order: Order, item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "orderId": order.orderId,
        "name": item.name,
        "qty": item.qty,
        "unitPrice": item.unitPrice,
        "status": item.status,
        "notes": item.notes,
        "createdAt": item.createdAt,
        "updatedAt": item.updatedAt,
    }


def order_new_payload(order: Order) -> dict[str, Any]:
    return {
        "orderId": order.orderId,
        "restaurantId": order.restaurantId,
        "tableSessionId": order.tableSessionId,
        "status": order.status,
        "items": [item_payload(order, i) for i in order.items],
        "createdAt": order.createdAt,
    }


def status_payload(order: Order, new: str, now: str) -> dict[str, Any]:
    return {
        "orderId": order.orderId,
        "restaurantId": order.restaurantId,
        "previousStatus": order.status,
        "newStatus": new,
        "updatedAt": now,
    }


def item_status_payload(order: Order, item: Item, new: str, now: str) -> dict[str, Any]:
    return {
        "orderId": order.orderId,
        "itemId": item.id,
        "restaurantId": order.restaurantId,
        "previousStatus": item.status,
        "newStatus": new,
        "updatedAt": now,
    }


def public_order(order: Order) -> dict[str, Any]:
    """The REST shape: seed-004's order plus `id`, money totals and timestamps."""
    return {
        "id": order.orderId,
        **order_new_payload(order),
        "total": str(order.total.quantize(Decimal("0.01"))),
        "updatedAt": order.updatedAt,
        "createdBy": order.createdBy,
    }
