"""Order rules (SPEC §5): money, status machines, order status derived from items, roles."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from relay_contracts import RelayError
from relay_contracts import orders as o
from relay_order import domain as d

NOW = "2026-01-01T00:00:00.000Z"
LATER = "2026-01-01T00:05:00.000Z"


def order_with(*statuses: str, status: str = d.CONFIRMED) -> d.Order:
    items = tuple(d.Item(f"i{n}", f"dish {n}", 1, "10.00", s, None, NOW, NOW) for n, s in enumerate(statuses))
    return d.Order("o1", "rest-a", "table-7", status, NOW, NOW, "waiter-1", items)


@pytest.mark.parametrize(
    ("given", "stored"),
    [("15.50", "15.50"), (15.50, "15.50"), (15.5, "15.50"), ("15", "15.00"), (0, "0.00"), (2, "2.00"), ("0.1", "0.10")],
)
def test_money_is_exact_and_canonical(given, stored):
    assert o.parse_money(given) == stored


@pytest.mark.parametrize(
    "bad",
    ["abc", "-1", -1, -0.5, "1.005", 1.005, "1e3", "NaN", "Infinity", True, None, [], "", " ", "12,50", "1000001"],
)
def test_money_refuses_anything_but_a_plain_non_negative_amount(bad):
    with pytest.raises(ValueError):
        o.parse_money(bad)


def test_totals_are_exact_decimal_sums():
    items = tuple(d.Item(f"i{n}", "x", 3, "0.10", d.PENDING, None, NOW, NOW) for n in range(3))
    order = d.Order("o1", "r", "t", d.DRAFT, NOW, NOW, "w", items)
    assert d.public_order(order)["total"] == "0.90"  # float arithmetic would give 0.8999999999999999


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Soup", "qty": -1, "unitPrice": "5.00"},
        {"name": "Soup", "qty": 0, "unitPrice": "5.00"},
        {"name": "Soup", "qty": "2", "unitPrice": "5.00"},
        {"name": "Soup", "qty": 2.5, "unitPrice": "5.00"},
        {"name": "Soup", "qty": 2, "unitPrice": "cheap"},
        {"name": "", "qty": 2, "unitPrice": "5.00"},
        {"name": "Soup", "qty": 2},
        {"name": "Soup", "qty": 2, "unitPrice": "5.00", "discount": 1},
    ],
)
def test_new_item_refuses_bad_input(body):
    with pytest.raises(ValidationError):
        o.NewItem.model_validate(body)


def test_confirm_moves_draft_to_confirmed_and_announces_new_order_then_status():
    draft = order_with(d.PENDING, status=d.DRAFT)
    change = d.confirm(draft, LATER)
    assert change.order.status == d.CONFIRMED
    assert [t for t, _ in change.events] == [o.ORDER_NEW, o.ORDER_STATUS_CHANGED]
    new = change.events[0][1]
    assert set(new) == {"orderId", "restaurantId", "tableSessionId", "status", "items", "createdAt"}
    assert new["status"] == d.CONFIRMED and new["items"][0]["unitPrice"] == "10.00"
    assert change.events[1][1] == {
        "orderId": "o1",
        "restaurantId": "rest-a",
        "previousStatus": "DRAFT",
        "newStatus": "CONFIRMED",
        "updatedAt": LATER,
    }


def test_confirm_twice_or_empty_is_a_conflict_carrying_the_current_state():
    with pytest.raises(RelayError) as twice:
        d.confirm(order_with(d.PENDING), LATER)
    assert twice.value.http_status == 409
    assert twice.value.to_dict()["current"] == {"orderId": "o1", "status": d.CONFIRMED}
    with pytest.raises(RelayError) as empty:
        d.confirm(order_with(status=d.DRAFT), LATER)
    assert empty.value.code == "CONFLICT"


def test_items_are_added_to_drafts_only():
    item = d.Item("new", "Tea", 1, "2.00", d.PENDING, None, LATER, LATER)
    assert d.add_item(order_with(status=d.DRAFT), item).order.items[-1] == item
    with pytest.raises(RelayError) as late:
        d.add_item(order_with(d.PENDING), item)
    assert late.value.code == "CONFLICT"


@pytest.mark.parametrize(
    ("start", "to", "legal"),
    [
        ("PENDING", "IN_PROGRESS", True),
        ("IN_PROGRESS", "READY", True),
        ("READY", "SERVED", True),
        ("PENDING", "CANCELLED", True),
        ("PENDING", "READY", False),
        ("PENDING", "SERVED", False),
        ("IN_PROGRESS", "PENDING", False),
        ("READY", "IN_PROGRESS", False),
        ("SERVED", "CANCELLED", False),
        ("CANCELLED", "IN_PROGRESS", False),
        ("IN_PROGRESS", "IN_PROGRESS", False),
    ],
)
def test_item_status_machine(start, to, legal):
    order = order_with(start, d.PENDING)
    if legal:
        assert d.set_item_status(order, "i0", to, LATER).order.items[0].status == to
    else:
        with pytest.raises(RelayError) as refused:
            d.set_item_status(order, "i0", to, LATER)
        assert refused.value.http_status == 409
        assert refused.value.details["current"]["itemStatus"] == start


def test_items_of_a_draft_or_finished_order_do_not_move():
    for status in (d.DRAFT, d.SERVED, d.CANCELLED):
        with pytest.raises(RelayError) as refused:
            d.set_item_status(order_with(d.PENDING, status=status), "i0", d.IN_PROGRESS, LATER)
        assert refused.value.details["current"]["status"] == status


def test_unknown_item_is_not_found():
    with pytest.raises(RelayError) as missing:
        d.set_item_status(order_with(d.PENDING), "nope", d.IN_PROGRESS, LATER)
    assert missing.value.code == "NOT_FOUND"


def test_order_status_follows_its_items():
    order = order_with(d.PENDING, d.PENDING)
    first = d.set_item_status(order, "i0", d.IN_PROGRESS, LATER)
    assert first.order.status == d.IN_PROGRESS
    assert [t for t, _ in first.events] == [o.ORDER_ITEM_STATUS_CHANGED, o.ORDER_STATUS_CHANGED]
    assert first.events[1][1]["previousStatus"] == d.CONFIRMED and first.events[1][1]["newStatus"] == d.IN_PROGRESS
    second = d.set_item_status(first.order, "i1", d.IN_PROGRESS, LATER)
    assert second.order.status == d.IN_PROGRESS and len(second.events) == 1  # no order move, no order event
    ready = d.set_item_status(d.set_item_status(second.order, "i0", d.READY, LATER).order, "i1", d.READY, LATER)
    assert ready.order.status == d.READY
    assert ready.events[-1][1] == {
        "orderId": "o1",
        "restaurantId": "rest-a",
        "previousStatus": "IN_PROGRESS",
        "newStatus": "READY",
        "updatedAt": LATER,
    }
    served = d.set_item_status(d.set_item_status(ready.order, "i0", d.SERVED, LATER).order, "i1", d.SERVED, LATER)
    assert served.order.status == d.SERVED


@pytest.mark.parametrize(
    ("items", "current", "derived"),
    [
        ((d.PENDING, d.PENDING), d.CONFIRMED, d.CONFIRMED),
        ((d.IN_PROGRESS, d.PENDING), d.CONFIRMED, d.IN_PROGRESS),
        ((d.READY, d.PENDING), d.CONFIRMED, d.IN_PROGRESS),
        ((d.READY, d.CANCELLED), d.IN_PROGRESS, d.READY),
        ((d.SERVED, d.READY), d.READY, d.READY),
        ((d.SERVED, d.CANCELLED), d.READY, d.SERVED),
        ((d.CANCELLED, d.CANCELLED), d.CONFIRMED, d.CANCELLED),
        ((d.PENDING, d.CANCELLED), d.IN_PROGRESS, d.IN_PROGRESS),  # cancelling never moves the order back
        ((d.PENDING,), d.DRAFT, d.DRAFT),
    ],
)
def test_derivation(items, current, derived):
    assert d.derived_status(order_with(*items, status=current)) == derived


@pytest.mark.parametrize(
    ("roles", "action", "allowed"),
    [
        (("WAITER",), d.CREATE, True),
        (("waiter",), d.CONFIRM, True),
        (("Waiter",), d.MOVE_ITEM, False),
        (("KITCHEN",), d.MOVE_ITEM, True),
        (("kitchen",), d.CREATE, False),
        (("kitchen",), d.ADD_ITEM, False),
        (("kitchen",), d.CANCEL, False),
        (("WAITER",), d.CANCEL, True),
        (("MANAGER",), d.CREATE, True),
        (("manager",), d.MOVE_ITEM, True),
        (("visitor",), d.READ, False),
        ((), d.READ, False),
    ],
)
def test_roles(roles, action, allowed):
    if allowed:
        d.require(roles, action)
    else:
        with pytest.raises(RelayError) as denied:
            d.require(roles, action)
        assert denied.value.code == "PERMISSION_DENIED"


def test_cancelling_a_confirmed_order_cancels_what_is_not_served_and_announces_it():
    order = order_with(d.SERVED, d.IN_PROGRESS, d.PENDING, status=d.IN_PROGRESS)
    change = d.cancel(order, LATER)
    assert change.order.status == d.CANCELLED
    assert [i.status for i in change.order.items] == [d.SERVED, d.CANCELLED, d.CANCELLED]
    assert [(t, p.get("itemId"), p["newStatus"]) for t, p in change.events] == [
        (o.ORDER_ITEM_STATUS_CHANGED, "i1", d.CANCELLED),
        (o.ORDER_ITEM_STATUS_CHANGED, "i2", d.CANCELLED),
        (o.ORDER_STATUS_CHANGED, None, d.CANCELLED),
    ]
    assert d.public_order(change.order)["total"] == "10.00"  # only the served dish is charged


def test_cancelling_a_draft_is_silent_and_a_finished_order_cannot_be_cancelled():
    silent = d.cancel(order_with(d.PENDING, status=d.DRAFT), LATER)
    assert silent.order.status == d.CANCELLED and silent.events == []
    for status in (d.SERVED, d.CANCELLED):
        with pytest.raises(RelayError) as refused:
            d.cancel(order_with(d.SERVED, status=status), LATER)
        assert refused.value.details["current"]["status"] == status
