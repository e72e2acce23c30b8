"""seed-004 restaurant orders: `order.new`, `order.status.changed`, `order.item.status.changed`
to `restaurant:{restaurantId}`, with seed-004's payloads and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from relay_contracts import Envelope
from relay_contracts import orders as o

from relay_gateway.dialects import Delivery, Renderer, Table

NAMESPACE = "/"

ITEM_FIELDS = ("id", "orderId", "name", "qty", "unitPrice", "status", "notes", "createdAt", "updatedAt")
FIELDS: dict[str, tuple[str, ...]] = {
    o.ORDER_NEW: ("orderId", "restaurantId", "tableSessionId", "status", "items", "createdAt"),
    o.ORDER_STATUS_CHANGED: ("orderId", "restaurantId", "previousStatus", "newStatus", "updatedAt"),
    o.ORDER_ITEM_STATUS_CHANGED: ("orderId", "itemId", "restaurantId", "previousStatus", "newStatus", "updatedAt"),
}


def _shape(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    payload = {k: data.get(k) for k in FIELDS[event_type]}
    if "items" in payload:
        payload["items"] = [{k: item.get(k) for k in ITEM_FIELDS} for item in data.get("items") or []]
    return payload


def _renderer(event_type: str) -> Renderer:
    def render(env: Envelope) -> Iterator[Delivery]:
        # the tenant is the restaurant: an event of restaurant A can only name A's room
        yield Delivery(NAMESPACE, o.restaurant_room(env.tenant), event_type, _shape(event_type, env.data))

    return render


TABLE: Table = {event_type: [_renderer(event_type)] for event_type in o.ORDER_EVENTS}
