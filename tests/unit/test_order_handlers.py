"""The order service's handlers with an in-memory repo: idempotent retries, lost-update-free
concurrent item moves, events published after the write and in the order of the changes."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError
from relay_contracts import Envelope, RelayError
from relay_contracts import orders as o
from relay_contracts.envelope import Actor, iso
from relay_order import handlers
from relay_order.adapters.repo import KEEP_REQUESTS, OrderRepo, new_document, pending_events
from relay_order.domain import Order
from relay_order.handlers import Deps


class FakeOrders:
    """Compare-and-set on `version`, with a yield at every I/O point so concurrent writers interleave."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.lost_races = 0

    async def get(self, tenant: str, order_id: str) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        doc = self.docs.get(f"{tenant}/{order_id}")
        return copy.deepcopy(doc) if doc else None

    async def find_created_by_request(self, tenant: str, request_id: str) -> dict[str, Any] | None:
        return next(
            (d for d in self.docs.values() if (d["tenant"], d.get("createRequestId")) == (tenant, request_id)), None
        )

    async def insert(self, order: Order, *, request_id: str | None) -> None:
        doc = new_document(order, request_id)
        if request_id is not None and await self.find_created_by_request(doc["tenant"], request_id):
            raise DuplicateKeyError("create_request_unique")  # the unique index of the real store
        if doc["_id"] in self.docs:
            raise DuplicateKeyError("_id_")
        self.docs[doc["_id"]] = doc

    async def save(self, previous, order, events, request):
        await asyncio.sleep(0)
        stored = self.docs[previous["_id"]]
        if stored["version"] != previous["version"]:
            self.lost_races += 1
            return None
        written = await OrderRepo.save(_Writer(stored), previous, order, events, request)  # type: ignore[arg-type]
        return written

    async def mark_published(self, tenant: str, order_id: str, seq: int) -> None:
        doc = self.docs[f"{tenant}/{order_id}"]
        doc["publishedSeq"] = max(doc["publishedSeq"], seq)

    async def list(self, tenant: str, statuses: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
        docs = [d for d in self.docs.values() if d["tenant"] == tenant and (not statuses or d["status"] in statuses)]
        return docs[:limit]


class _Writer:
    """Lets the real OrderRepo.save build the update against a dict instead of a collection."""

    def __init__(self, stored: dict[str, Any]) -> None:
        self._col = self
        self._stored = stored

    async def update_one(self, query: dict[str, Any], update: dict[str, Any]) -> Any:
        self._stored.update(copy.deepcopy(update["$set"]))
        return type("Result", (), {"modified_count": 1})()


class Published(list[tuple[str, Envelope]]):
    def __init__(self) -> None:
        super().__init__()
        self.fail_next = 0

    async def __call__(self, key: str, env: Envelope) -> None:
        await asyncio.sleep(0)
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("broker away")
        self.append((key, env))


@pytest.fixture
def deps() -> Deps:
    return Deps(FakeOrders(), Published())  # type: ignore[arg-type]


def cmd(type_: str, user: str, role: str, tenant: str = "rest-a", **data: Any) -> Envelope:
    return Envelope(
        type=type_, tenant=tenant, correlationId="corr-1", actor=Actor(userId=user, roles=(role,)), data=data
    )


async def confirmed_order(deps: Deps, items: int = 2) -> tuple[str, list[str]]:
    order = await handlers.create_order(cmd(o.CREATE_ORDER, "w1", "WAITER", tableSessionId="t1"), deps)
    ids = []
    for n in range(items):
        item = await handlers.add_item(
            cmd(o.ADD_ITEM, "w1", "WAITER", orderId=order["id"], name=f"dish {n}", qty=1, unitPrice="9.90"), deps
        )
        ids.append(item["id"])
    await handlers.confirm_order(cmd(o.CONFIRM_ORDER, "w1", "WAITER", orderId=order["id"]), deps)
    return order["id"], ids


def events(deps: Deps) -> list[tuple[str, dict[str, Any]]]:
    return [(env.type, env.data) for _, env in deps.publish]  # type: ignore[attr-defined]


async def move(deps: Deps, order_id: str, item_id: str, status: str, request_id: str | None = None) -> Any:
    data = {"orderId": order_id, "itemId": item_id, "status": status}
    if request_id:
        data["requestId"] = request_id
    return await handlers.set_item_status(cmd(o.SET_ITEM_STATUS, "k1", "kitchen", **data), deps)


async def test_confirm_publishes_new_order_then_status_to_the_restaurant_room(deps):
    order_id, _ = await confirmed_order(deps)
    assert [t for t, _ in events(deps)] == [o.ORDER_NEW, o.ORDER_STATUS_CHANGED]
    keys = {key for key, _ in deps.publish}  # type: ignore[attr-defined]
    assert keys == {o.event_routing_key("rest-a", o.ORDER_NEW), o.event_routing_key("rest-a", o.ORDER_STATUS_CHANGED)}
    new = events(deps)[0][1]
    assert new["orderId"] == order_id and new["status"] == "CONFIRMED" and len(new["items"]) == 2


async def test_retried_confirm_with_same_request_id_has_one_effect_and_one_event(deps):
    order = await handlers.create_order(cmd(o.CREATE_ORDER, "w1", "waiter", tableSessionId="t1"), deps)
    await handlers.add_item(
        cmd(o.ADD_ITEM, "w1", "waiter", orderId=order["id"], name="Soup", qty=1, unitPrice="4.00"), deps
    )
    confirm = cmd(o.CONFIRM_ORDER, "w1", "waiter", orderId=order["id"], requestId="r-confirm")
    first, again = await handlers.confirm_order(confirm, deps), await handlers.confirm_order(confirm, deps)
    assert first["status"] == again["status"] == "CONFIRMED"
    assert [t for t, _ in events(deps)] == [o.ORDER_NEW, o.ORDER_STATUS_CHANGED]
    # without the request id it is a second confirm: refused with the current state
    with pytest.raises(RelayError) as refused:
        await handlers.confirm_order(cmd(o.CONFIRM_ORDER, "w1", "waiter", orderId=order["id"]), deps)
    assert refused.value.http_status == 409 and refused.value.details["current"]["status"] == "CONFIRMED"


async def test_request_id_reused_for_another_change_is_a_conflict(deps):
    order_id, (a, b) = await confirmed_order(deps)
    await move(deps, order_id, a, "IN_PROGRESS", "r-1")
    with pytest.raises(RelayError) as reused:
        await move(deps, order_id, b, "IN_PROGRESS", "r-1")
    assert reused.value.code == "CONFLICT"


async def test_retried_create_and_add_item_return_the_original(deps):
    create = cmd(o.CREATE_ORDER, "w1", "WAITER", tableSessionId="t1", requestId="c-1")
    first, again = await handlers.create_order(create, deps), await handlers.create_order(create, deps)
    assert first["id"] == again["id"] and len(deps.orders.docs) == 1  # type: ignore[attr-defined]
    add = cmd(o.ADD_ITEM, "w1", "WAITER", orderId=first["id"], name="Tea", qty=2, unitPrice=1.5, requestId="a-1")
    item, item_again = await handlers.add_item(add, deps), await handlers.add_item(add, deps)
    assert item == item_again and item["unitPrice"] == "1.50"
    order = await handlers.get_order(cmd(o.GET_ORDER, "w1", "WAITER", orderId=first["id"]), deps)
    assert len(order["items"]) == 1 and order["total"] == "3.00"


async def test_concurrent_item_moves_lose_no_update_and_events_follow_the_changes(deps):
    order_id, ids = await confirmed_order(deps, items=6)
    await asyncio.gather(*(move(deps, order_id, i, "IN_PROGRESS") for i in ids))
    await asyncio.gather(*(move(deps, order_id, i, "READY") for i in ids))
    assert deps.orders.lost_races > 0  # type: ignore[attr-defined]  # the writers really raced
    order = await handlers.get_order(cmd(o.GET_ORDER, "m1", "MANAGER", orderId=order_id), deps)
    assert [i["status"] for i in order["items"]] == ["READY"] * 6 and order["status"] == "READY"
    published = events(deps)[2:]
    assert sum(t == o.ORDER_ITEM_STATUS_CHANGED for t, _ in published) == 12
    order_moves = [(p["previousStatus"], p["newStatus"]) for t, p in published if t == o.ORDER_STATUS_CHANGED]
    assert order_moves == [("CONFIRMED", "IN_PROGRESS"), ("IN_PROGRESS", "READY")]
    # the order moves right after the item change that caused it
    first_item_event = next(n for n, (t, _) in enumerate(published) if t == o.ORDER_ITEM_STATUS_CHANGED)
    assert published[first_item_event + 1][0] == o.ORDER_STATUS_CHANGED
    assert published[-1][0] == o.ORDER_STATUS_CHANGED
    ids_in_order = [env.id for _, env in deps.publish]  # type: ignore[attr-defined]
    assert ids_in_order == sorted(ids_in_order, key=lambda i: int(i.rsplit("-", 1)[1]))


async def test_same_item_moved_twice_at_once_one_wins_one_conflicts(deps):
    order_id, (a, _) = await confirmed_order(deps)
    results = await asyncio.gather(
        move(deps, order_id, a, "IN_PROGRESS"), move(deps, order_id, a, "IN_PROGRESS"), return_exceptions=True
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    refused = next(r for r in results if isinstance(r, RelayError))
    assert refused.code == "CONFLICT" and refused.details["current"]["itemStatus"] == "IN_PROGRESS"


async def test_events_unpublished_by_a_crash_go_out_with_the_retry_exactly_once(deps):
    order_id, (a, _) = await confirmed_order(deps)
    deps.publish.fail_next = 1  # type: ignore[attr-defined]
    with pytest.raises(ConnectionError):
        await move(deps, order_id, a, "IN_PROGRESS", "r-move")
    stored = deps.orders.docs[f"rest-a/{order_id}"]  # type: ignore[attr-defined]
    assert [e["envelope"]["type"] for e in pending_events(stored)] == [
        o.ORDER_ITEM_STATUS_CHANGED,
        o.ORDER_STATUS_CHANGED,
    ]
    await move(deps, order_id, a, "IN_PROGRESS", "r-move")  # the broker redelivers the command
    assert [t for t, _ in events(deps)][2:] == [o.ORDER_ITEM_STATUS_CHANGED, o.ORDER_STATUS_CHANGED]
    assert pending_events(deps.orders.docs[f"rest-a/{order_id}"]) == []  # type: ignore[attr-defined]


async def test_roles_and_tenants(deps):
    with pytest.raises(RelayError) as kitchen_creates:
        await handlers.create_order(cmd(o.CREATE_ORDER, "k1", "KITCHEN", tableSessionId="t1"), deps)
    assert kitchen_creates.value.code == "PERMISSION_DENIED"
    order_id, (a, _) = await confirmed_order(deps)
    with pytest.raises(RelayError) as waiter_moves:
        await handlers.set_item_status(
            cmd(o.SET_ITEM_STATUS, "w1", "WAITER", orderId=order_id, itemId=a, status="IN_PROGRESS"), deps
        )
    assert waiter_moves.value.code == "PERMISSION_DENIED"
    with pytest.raises(RelayError) as other_restaurant:
        await handlers.get_order(cmd(o.GET_ORDER, "m2", "MANAGER", tenant="rest-b", orderId=order_id), deps)
    assert other_restaurant.value.code == "NOT_FOUND"
    listed = await handlers.list_orders(cmd(o.LIST_ORDERS, "m2", "MANAGER", tenant="rest-b"), deps)
    assert listed == []


def test_request_log_is_bounded():
    assert KEEP_REQUESTS >= 100


async def test_a_refused_command_still_publishes_what_a_crashed_writer_left_behind(deps):
    order_id, (a, _) = await confirmed_order(deps)
    deps.publish.fail_next = 1  # type: ignore[attr-defined]
    with pytest.raises(ConnectionError):
        await move(deps, order_id, a, "IN_PROGRESS")
    with pytest.raises(RelayError) as refused:  # another cook, not a retry: illegal, but it repairs the outbox
        await move(deps, order_id, a, "IN_PROGRESS")
    assert refused.value.code == "CONFLICT"
    assert [t for t, _ in events(deps)][2:] == [o.ORDER_ITEM_STATUS_CHANGED, o.ORDER_STATUS_CHANGED]


async def test_an_order_whose_caller_cancelled_is_not_created_and_a_claimed_one_is_created_once(deps):
    from relay_contracts.claims import CANCELLED

    cancelled = cmd(o.CREATE_ORDER, "w1", "WAITER", tableSessionId="t-late").expiring_in(5)
    assert await deps.claims.cancel(cancelled.id) == CANCELLED  # the gateway's timer won
    with pytest.raises(RelayError) as refused:
        await handlers.create_order(cancelled, deps)
    assert refused.value.code == "UNAVAILABLE" and deps.orders.docs == {}  # type: ignore[attr-defined]
    # no Idempotency-Key: the redelivery of a claimed create, past its deadline, answers the one order
    claimed = cmd(o.CREATE_ORDER, "w1", "WAITER", tableSessionId="t-claimed").expiring_in(5)
    first = await handlers.create_order(claimed, deps)
    again = await handlers.create_order(claimed.model_copy(update={"expiresAt": iso(datetime.now(UTC))}), deps)
    assert again["id"] == first["id"] and len(deps.orders.docs) == 1  # type: ignore[attr-defined]
    with pytest.raises(RelayError):  # a late command nobody claimed is refused
        await handlers.create_order(cmd(o.CREATE_ORDER, "w1", "WAITER", tableSessionId="t-x").expiring_in(-1), deps)


async def test_a_change_without_request_id_redelivered_after_its_claim_applies_once(deps):
    order_id = (await handlers.create_order(cmd(o.CREATE_ORDER, "w1", "WAITER", tableSessionId="t1"), deps))["id"]
    add = cmd(o.ADD_ITEM, "w1", "WAITER", orderId=order_id, name="Tea", qty=1, unitPrice=2).expiring_in(5)
    first = await handlers.add_item(add, deps)
    again = await handlers.add_item(add.model_copy(update={"expiresAt": iso(datetime.now(UTC))}), deps)
    assert again == first
    order = await handlers.get_order(cmd(o.GET_ORDER, "w1", "WAITER", orderId=order_id), deps)
    assert len(order["items"]) == 1
