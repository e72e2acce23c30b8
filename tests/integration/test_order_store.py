"""OrderRepo against a real MongoDB-wire server: compare-and-set, outbox, idempotent create, listing."""

from __future__ import annotations

import asyncio

import pytest
from relay_contracts import orders as o
from relay_order import domain as d
from relay_order import handlers
from relay_order.adapters.repo import OrderRepo, pending_events, to_order
from relay_order.handlers import Deps

from tests.unit.test_order_handlers import Published, cmd

NOW = "2026-01-01T00:00:00.000Z"


@pytest.fixture
async def repo(db) -> OrderRepo:
    r = OrderRepo(db)
    await r.ensure_indexes()
    return r


def draft(order_id: str, tenant: str = "rest-a", at: str = NOW) -> d.Order:
    return d.new_order(order_id, tenant, "table-1", "waiter-1", at)


async def test_compare_and_set_refuses_a_stale_writer(repo):
    await repo.insert(draft("o1"), request_id=None)
    seen_by_a = await repo.get("rest-a", "o1")
    seen_by_b = await repo.get("rest-a", "o1")
    item = d.Item("i1", "Soup", 2, "4.50", d.PENDING, None, NOW, NOW)
    written = await repo.save(seen_by_a, d.add_item(to_order(seen_by_a), item).order, [], {"id": "r-a", "op": "x"})
    assert written is not None and written["version"] == 2
    other = d.Item("i2", "Tea", 1, "1.00", d.PENDING, None, NOW, NOW)
    assert await repo.save(seen_by_b, d.add_item(to_order(seen_by_b), other).order, [], None) is None
    stored = await repo.get("rest-a", "o1")
    assert [i.id for i in to_order(stored).items] == ["i1"]  # b's stale write changed nothing
    assert to_order(stored).items[0].unitPrice == "4.50"
    assert stored["requests"] == [{"id": "r-a", "op": "x"}]


async def test_outbox_numbers_events_and_publishing_marks_them(repo):
    await repo.insert(draft("o2"), request_id=None)
    doc = await repo.get("rest-a", "o2")
    events = [{"routingKey": "k", "envelope": {"n": n}} for n in range(3)]
    written = await repo.save(doc, to_order(doc), events, None)
    assert [e["seq"] for e in pending_events(written)] == [1, 2, 3]
    await repo.mark_published("rest-a", "o2", 2)
    await repo.mark_published("rest-a", "o2", 1)  # a late, slower publisher never moves the mark back
    stored = await repo.get("rest-a", "o2")
    assert stored["publishedSeq"] == 2 and [e["seq"] for e in pending_events(stored)] == [3]
    again = await repo.save(stored, to_order(stored), [{"routingKey": "k", "envelope": {"n": 3}}], None)
    assert [e["seq"] for e in again["outbox"]] == [3, 4]  # published entries are trimmed on the next write


async def test_create_request_id_is_unique_per_tenant(repo):
    from pymongo.errors import DuplicateKeyError

    await repo.insert(draft("o3"), request_id="req-1")
    with pytest.raises(DuplicateKeyError):
        await repo.insert(draft("o4"), request_id="req-1")
    await repo.insert(draft("o5", tenant="rest-b"), request_id="req-1")  # another restaurant's key space
    found = await repo.find_created_by_request("rest-a", "req-1")
    assert found is not None and found["orderId"] == "o3"


async def test_list_filters_by_tenant_and_status_newest_first(repo):
    await repo.insert(draft("a1", at="2026-01-01T00:00:01.000Z"), request_id=None)
    await repo.insert(draft("a2", at="2026-01-01T00:00:02.000Z"), request_id=None)
    await repo.insert(draft("b1", tenant="rest-b"), request_id=None)
    doc = await repo.get("rest-a", "a1")
    order = d.add_item(to_order(doc), d.Item("i", "x", 1, "1.00", d.PENDING, None, NOW, NOW)).order
    await repo.save(doc, d.confirm(order, NOW).order, [], None)
    assert [x["orderId"] for x in await repo.list("rest-a", (), 10)] == ["a2", "a1"]
    assert [x["orderId"] for x in await repo.list("rest-a", ("CONFIRMED",), 10)] == ["a1"]
    assert [x["orderId"] for x in await repo.list("rest-a", ("DRAFT", "CONFIRMED"), 1)] == ["a2"]
    assert [x["orderId"] for x in await repo.list("rest-b", (), 10)] == ["b1"]


async def test_concurrent_kitchen_writers_on_a_real_store_lose_nothing(repo):
    deps = Deps(repo, Published())  # type: ignore[arg-type]
    order = await handlers.create_order(cmd(o.CREATE_ORDER, "w1", "WAITER", tableSessionId="t"), deps)
    ids = [
        (
            await handlers.add_item(
                cmd(o.ADD_ITEM, "w1", "WAITER", orderId=order["id"], name=f"d{n}", qty=1, unitPrice="2"), deps
            )
        )["id"]
        for n in range(4)
    ]
    await handlers.confirm_order(cmd(o.CONFIRM_ORDER, "w1", "WAITER", orderId=order["id"]), deps)
    moves = [
        handlers.set_item_status(
            cmd(o.SET_ITEM_STATUS, "k1", "KITCHEN", orderId=order["id"], itemId=i, status="IN_PROGRESS"), deps
        )
        for i in ids
    ]
    await asyncio.gather(*moves)
    final = await handlers.get_order(cmd(o.GET_ORDER, "k1", "KITCHEN", orderId=order["id"]), deps)
    assert [i["status"] for i in final["items"]] == ["IN_PROGRESS"] * 4 and final["status"] == "IN_PROGRESS"
    assert final["total"] == "8.00"
    types = [env.type for _, env in deps.publish]  # type: ignore[attr-defined]
    assert types.count(o.ORDER_ITEM_STATUS_CHANGED) == 4 and types.count(o.ORDER_STATUS_CHANGED) == 2
    stored = await repo.get("rest-a", order["id"])
    assert pending_events(stored) == []
