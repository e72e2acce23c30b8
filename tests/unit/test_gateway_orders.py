"""The orders dialect and its connection hook, without servers."""

from __future__ import annotations

from dataclasses import dataclass, field

from relay_auth import Principal
from relay_contracts import Envelope
from relay_contracts import orders as o
from relay_gateway.context import Connection
from relay_gateway.dialects import render
from relay_gateway.dialects.orders import TABLE
from relay_gateway.interest import Interest
from relay_gateway.sockets.orders import join_restaurant


def test_order_events_go_to_the_restaurant_room_with_seed_payloads_only():
    data = {
        "orderId": "o1",
        "itemId": "i1",
        "restaurantId": "rest-a",
        "previousStatus": "PENDING",
        "newStatus": "IN_PROGRESS",
        "updatedAt": "2026-01-01T00:00:00.000Z",
        "internalNote": "not for the wire",
    }
    env = Envelope(type=o.ORDER_ITEM_STATUS_CHANGED, tenant="rest-a", correlationId="c", data=data)
    (delivery,) = render(TABLE, env)
    where = (delivery.namespace, delivery.room, delivery.event)
    assert where == ("/", "restaurant:rest-a", "order.item.status.changed")
    assert "internalNote" not in delivery.payload and delivery.payload["itemId"] == "i1"


def test_the_room_comes_from_the_envelope_tenant_not_the_payload():
    data = {"orderId": "o1", "restaurantId": "rest-b", "previousStatus": "DRAFT", "newStatus": "CONFIRMED"}
    env = Envelope(type=o.ORDER_STATUS_CHANGED, tenant="rest-a", correlationId="c", data=data)
    assert [d.room for d in render(TABLE, env)] == ["restaurant:rest-a"]


def test_order_new_items_keep_seed_fields():
    item = {"id": "i1", "orderId": "o1", "name": "Soup", "qty": 1, "unitPrice": "4.00", "status": "PENDING"}
    data = {"orderId": "o1", "restaurantId": "r", "tableSessionId": "t", "status": "CONFIRMED", "items": [item]}
    (delivery,) = render(TABLE, Envelope(type=o.ORDER_NEW, tenant="r", correlationId="c", data=data))
    assert delivery.payload["items"][0]["unitPrice"] == "4.00"
    assert set(delivery.payload["items"][0]) == {
        "id",
        "orderId",
        "name",
        "qty",
        "unitPrice",
        "status",
        "notes",
        "createdAt",
        "updatedAt",
    }


@dataclass
class FakeSio:
    rooms: list[tuple[str, str, str]] = field(default_factory=list)

    async def enter_room(self, sid: str, room: str, namespace: str = "/") -> None:
        self.rooms.append((sid, room, namespace))


@dataclass
class FakeGateway:
    sio: FakeSio
    delivery: object


async def test_only_restaurant_tokens_on_the_default_namespace_join_the_restaurant():
    bound: list[str] = []

    async def bind(p: str) -> None:
        bound.append(p)

    async def unbind(p: str) -> None:
        pass

    gw = FakeGateway(FakeSio(), type("D", (), {"interest": Interest(bind, unbind)})())
    waiter = Principal("w1", "rest-a", frozenset({"waiter"}), has_tenant_claim=True, tenant_claim="restaurantId")
    plain = Principal("u1", "acme", frozenset({"waiter"}), has_tenant_claim=True, tenant_claim="tenantId")
    await join_restaurant(gw, Connection("s1", "/", waiter))  # type: ignore[arg-type]
    await join_restaurant(gw, Connection("s2", "/", plain))  # type: ignore[arg-type]
    await join_restaurant(gw, Connection("s3", "/chat", waiter))  # type: ignore[arg-type]
    assert gw.sio.rooms == [("s1", "rest-a|restaurant:rest-a", "/")]
    assert bound == [o.restaurant_interest("rest-a")]
    assert o.event_routing_key("rest-a", o.ORDER_NEW).startswith(o.restaurant_interest("rest-a")[:-1])
