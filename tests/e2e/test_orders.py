"""seed-004 end to end: restaurant orders over REST, `order.*` events to `restaurant:{id}` on both replicas."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from relay_devstack.stack import free_port
from relay_sdk import RelayClient, RelaySocket
from relay_sdk.client import RelayError

from tests.e2e.test_correlation import log_lines

pytestmark = pytest.mark.e2e

ORDER_EVENTS = ("order.new", "order.status.changed", "order.item.status.changed")
ITEM_KEYS = {"id", "orderId", "name", "qty", "unitPrice", "status", "notes", "createdAt", "updatedAt"}


async def login(url: str, email: str) -> str:
    async with RelayClient(url) as anonymous:
        body = await anonymous.post("/api/v1/auth/login", {"email": email, "password": "password123"}, expect=200)
    return str(body["accessToken"])


@pytest.fixture(scope="module")
async def staff(stack) -> dict[str, str]:
    """Tokens of seed-004's demo users, obtained the way the seed does: POST /api/v1/auth/login."""
    users = ("waiter", "kitchen", "manager")
    tokens = {}
    for who in users:
        tokens[who] = await login(stack.gateway_urls[0], f"{who}@restaurante.com")
        tokens[f"{who}-b"] = await login(stack.gateway_urls[1], f"{who}@restaurante-b.com")
    return tokens


@pytest.fixture
async def sockets(client_factory) -> AsyncIterator[list[RelaySocket]]:
    opened: list[RelaySocket] = []
    yield opened
    for sock in opened:
        await sock.close()


async def watch(client_factory, sockets, token: str, replica: int) -> RelaySocket:
    sock = client_factory(token, replica).socket()
    await sock.connect()
    await sock.wait_for("connected")
    sockets.append(sock)
    return sock


def order_events(sock: RelaySocket, order_id: str | None = None) -> list[tuple[str, Any]]:
    return [
        (name, payload)
        for name, payload in sock.sequence
        if name in ORDER_EVENTS and (order_id is None or payload.get("orderId") == order_id)
    ]


async def wait_order_events(sock: RelaySocket, order_id: str, count: int, timeout: float = 10.0) -> list[Any]:
    await sock.wait_until(lambda: len(order_events(sock, order_id)) >= count, timeout)
    return order_events(sock, order_id)


async def new_order(waiter: RelayClient, *prices: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    order = await waiter.post("/api/v1/orders", {"tableSessionId": f"table-{uuid.uuid4().hex[:6]}"}, expect=201)
    for n, price in enumerate(prices or ("15.50",)):
        await waiter.post(
            f"/api/v1/orders/{order['id']}/items", {"name": f"dish {n}", "qty": 2, "unitPrice": price}, expect=201
        )
    return dict(order)


async def test_seed_004_flow_reaches_sockets_on_both_replicas_with_seed_payloads(
    gateways, client_factory, sockets, staff
):
    # a kitchen screen on replica B and a manager on replica A, connected before anything happens
    kitchen_screen = await watch(client_factory, sockets, staff["kitchen"], 1)
    manager_screen = await watch(client_factory, sockets, staff["manager"], 0)

    # seed-004 step 3, with the waiter on replica A
    waiter = client_factory(staff["waiter"], 0)
    order = await waiter.post("/api/v1/orders", {"tableSessionId": "session-id-here"}, expect=201)
    order_id = order["id"]
    assert order["status"] == "DRAFT" and order["restaurantId"] == "rest-a" and order["items"] == []
    item = await waiter.post(
        f"/api/v1/orders/{order_id}/items", {"name": "Hamburguesa", "qty": 2, "unitPrice": 15.50}, expect=201
    )
    assert item["unitPrice"] == "15.50" and item["qty"] == 2 and item["status"] == "PENDING"
    confirmed = await waiter.post(f"/api/v1/orders/{order_id}/confirm", expect=200)
    assert confirmed["status"] == "CONFIRMED" and confirmed["total"] == "31.00"

    # step 4: both screens see order.new with the full order, then DRAFT -> CONFIRMED
    for screen in (kitchen_screen, manager_screen):
        (new_name, new), (status_name, status) = await wait_order_events(screen, order_id, 2)
        assert (new_name, status_name) == ("order.new", "order.status.changed")
        assert set(new) == {"orderId", "restaurantId", "tableSessionId", "status", "items", "createdAt"}
        assert new["orderId"] == order_id and new["restaurantId"] == "rest-a" and new["status"] == "CONFIRMED"
        assert new["tableSessionId"] == "session-id-here"
        assert len(new["items"]) == 1 and set(new["items"][0]) == ITEM_KEYS
        assert new["items"][0]["unitPrice"] == "15.50" and new["items"][0]["notes"] is None
        assert status == {
            "orderId": order_id,
            "restaurantId": "rest-a",
            "previousStatus": "DRAFT",
            "newStatus": "CONFIRMED",
            "updatedAt": status["updatedAt"],
        }

    # step 5: kitchen (on replica B) moves the item; everyone sees the item and the order move
    kitchen = client_factory(staff["kitchen"], 1)
    moved = await kitchen.post(
        f"/api/v1/orders/{order_id}/items/{item['id']}/status", {"status": "IN_PROGRESS"}, expect=200
    )
    assert moved["status"] == "IN_PROGRESS" and moved["items"][0]["status"] == "IN_PROGRESS"
    for screen in (kitchen_screen, manager_screen):
        events = await wait_order_events(screen, order_id, 4)
        (item_name, item_event), (order_name, order_event) = events[2:]
        assert item_name == "order.item.status.changed" and order_name == "order.status.changed"
        assert item_event == {
            "orderId": order_id,
            "itemId": item["id"],
            "restaurantId": "rest-a",
            "previousStatus": "PENDING",
            "newStatus": "IN_PROGRESS",
            "updatedAt": item_event["updatedAt"],
        }
        assert (order_event["previousStatus"], order_event["newStatus"]) == ("CONFIRMED", "IN_PROGRESS")

    fetched = await client_factory(staff["manager"], 1).get(f"/api/v1/orders/{order_id}")
    assert fetched["status"] == "IN_PROGRESS" and fetched["items"][0]["status"] == "IN_PROGRESS"
    in_progress = await waiter.get("/api/v1/orders", params={"status": "IN_PROGRESS"})
    assert order_id in [o["id"] for o in in_progress]
    assert order_id not in [o["id"] for o in await waiter.get("/api/v1/orders", params={"status": "DRAFT"})]
    await asyncio.sleep(0.3)  # nothing arrives twice
    assert len(order_events(kitchen_screen, order_id)) == len(order_events(manager_screen, order_id)) == 4


async def test_restaurants_never_see_each_other(client_factory, sockets, staff):
    screen_a = await watch(client_factory, sockets, staff["kitchen"], 0)
    screen_b = await watch(client_factory, sockets, staff["kitchen-b"], 1)
    screen_b_same_replica = await watch(client_factory, sockets, staff["manager-b"], 0)
    order_a = await new_order(client_factory(staff["waiter"], 1))
    await client_factory(staff["waiter"], 1).post(f"/api/v1/orders/{order_a['id']}/confirm", expect=200)
    order_b = await new_order(client_factory(staff["waiter-b"], 0))
    await client_factory(staff["waiter-b"], 0).post(f"/api/v1/orders/{order_b['id']}/confirm", expect=200)

    await wait_order_events(screen_a, order_a["id"], 2)
    await wait_order_events(screen_b, order_b["id"], 2)
    await wait_order_events(screen_b_same_replica, order_b["id"], 2)
    await asyncio.sleep(0.3)
    assert {p["restaurantId"] for _, p in order_events(screen_a)} == {"rest-a"}
    assert {p["restaurantId"] for _, p in order_events(screen_b)} == {"rest-b"}
    assert {p["restaurantId"] for _, p in order_events(screen_b_same_replica)} == {"rest-b"}

    # by id, another restaurant's order does not exist; lists hold only the caller's restaurant
    manager_b = client_factory(staff["manager-b"], 1)
    with pytest.raises(RelayError) as hidden:
        await manager_b.get(f"/api/v1/orders/{order_a['id']}")
    assert hidden.value.status == 404
    kitchen_b = client_factory(staff["kitchen-b"], 0)
    with pytest.raises(RelayError) as not_yours:
        item_a = order_a["id"]
        await kitchen_b.post(f"/api/v1/orders/{item_a}/items/x/status", {"status": "IN_PROGRESS"})
    assert not_yours.value.status == 404
    listed_b = await manager_b.get("/api/v1/orders")
    assert order_a["id"] not in [o["id"] for o in listed_b] and order_b["id"] in [o["id"] for o in listed_b]


async def test_illegal_transitions_are_409_with_the_current_state(client_factory, staff):
    waiter = client_factory(staff["waiter"], 0)
    kitchen = client_factory(staff["kitchen"], 1)
    order = await new_order(waiter)
    item_id = (await waiter.get(f"/api/v1/orders/{order['id']}"))["items"][0]["id"]

    with pytest.raises(RelayError) as too_early:
        await kitchen.post(f"/api/v1/orders/{order['id']}/items/{item_id}/status", {"status": "IN_PROGRESS"})
    assert too_early.value.status == 409 and too_early.value.body["error"]["current"]["status"] == "DRAFT"

    await waiter.post(f"/api/v1/orders/{order['id']}/confirm", expect=200)
    with pytest.raises(RelayError) as again:
        await waiter.post(f"/api/v1/orders/{order['id']}/confirm")
    assert again.value.status == 409 and again.value.code == "CONFLICT"
    assert again.value.body["error"]["current"] == {"orderId": order["id"], "status": "CONFIRMED"}

    with pytest.raises(RelayError) as skip:
        await kitchen.post(f"/api/v1/orders/{order['id']}/items/{item_id}/status", {"status": "SERVED"})
    assert skip.value.status == 409
    assert skip.value.body["error"]["current"] == {
        "orderId": order["id"],
        "status": "CONFIRMED",
        "itemId": item_id,
        "itemStatus": "PENDING",
    }
    with pytest.raises(RelayError) as late_item:
        await waiter.post(f"/api/v1/orders/{order['id']}/items", {"name": "Tea", "qty": 1, "unitPrice": "2.00"})
    assert late_item.value.status == 409
    after = await waiter.get(f"/api/v1/orders/{order['id']}")
    assert after["status"] == "CONFIRMED" and [i["status"] for i in after["items"]] == ["PENDING"]


async def test_cancelling_an_order_reaches_the_kitchen(client_factory, sockets, staff):
    screen = await watch(client_factory, sockets, staff["kitchen"], 1)
    waiter = client_factory(staff["waiter"], 0)
    order = await new_order(waiter, "3.00", "4.00")
    await waiter.post(f"/api/v1/orders/{order['id']}/confirm", expect=200)
    with pytest.raises(RelayError) as kitchen_cancels:
        await client_factory(staff["kitchen"], 1).post(f"/api/v1/orders/{order['id']}/cancel")
    assert kitchen_cancels.value.status == 403
    cancelled = await waiter.post(f"/api/v1/orders/{order['id']}/cancel", expect=200)
    assert cancelled["status"] == "CANCELLED" and {i["status"] for i in cancelled["items"]} == {"CANCELLED"}
    assert cancelled["total"] == "0.00"
    events = await wait_order_events(screen, order["id"], 2 + 3)
    assert [name for name, _ in events[2:]] == [
        "order.item.status.changed",
        "order.item.status.changed",
        "order.status.changed",
    ]
    assert (events[-1][1]["previousStatus"], events[-1][1]["newStatus"]) == ("CONFIRMED", "CANCELLED")
    with pytest.raises(RelayError) as twice:
        await waiter.post(f"/api/v1/orders/{order['id']}/cancel")
    assert twice.value.status == 409 and twice.value.body["error"]["current"]["status"] == "CANCELLED"


async def test_roles_are_enforced(client_factory, staff):
    waiter = client_factory(staff["waiter"], 0)
    kitchen = client_factory(staff["kitchen"], 1)
    with pytest.raises(RelayError) as kitchen_creates:
        await kitchen.post("/api/v1/orders", {"tableSessionId": "t"})
    assert kitchen_creates.value.status == 403 and kitchen_creates.value.code == "PERMISSION_DENIED"
    order = await new_order(waiter)
    with pytest.raises(RelayError) as kitchen_confirms:
        await kitchen.post(f"/api/v1/orders/{order['id']}/confirm")
    assert kitchen_confirms.value.status == 403
    await waiter.post(f"/api/v1/orders/{order['id']}/confirm", expect=200)
    item_id = order_item = (await waiter.get(f"/api/v1/orders/{order['id']}"))["items"][0]["id"]
    with pytest.raises(RelayError) as waiter_cooks:
        await waiter.post(f"/api/v1/orders/{order['id']}/items/{order_item}/status", {"status": "IN_PROGRESS"})
    assert waiter_cooks.value.status == 403
    manager = client_factory(staff["manager"], 0)
    await manager.post(f"/api/v1/orders/{order['id']}/items/{item_id}/status", {"status": "IN_PROGRESS"}, expect=200)
    async with RelayClient(client_factory(staff["waiter"], 0).base_url) as anonymous:
        with pytest.raises(RelayError) as nobody:
            await anonymous.get(f"/api/v1/orders/{order['id']}")
        assert nobody.value.status == 401


async def test_concurrent_kitchen_clients_lose_no_update(client_factory, sockets, staff):
    screen = await watch(client_factory, sockets, staff["manager"], 0)
    waiter = client_factory(staff["waiter"], 0)
    order = await new_order(waiter, "1.10", "2.20", "3.30", "4.40", "5.50", "6.60")
    await waiter.post(f"/api/v1/orders/{order['id']}/confirm", expect=200)
    items = [i["id"] for i in (await waiter.get(f"/api/v1/orders/{order['id']}"))["items"]]
    cooks = [client_factory(staff["kitchen"], 0), client_factory(staff["kitchen"], 1)]

    async def move_all(status: str) -> None:
        await asyncio.gather(
            *(
                cooks[n % 2].post(f"/api/v1/orders/{order['id']}/items/{i}/status", {"status": status}, expect=200)
                for n, i in enumerate(items)
            )
        )

    await move_all("IN_PROGRESS")
    await move_all("READY")
    final = await waiter.get(f"/api/v1/orders/{order['id']}")
    assert [i["status"] for i in final["items"]] == ["READY"] * 6
    assert final["status"] == "READY" and final["total"] == "46.20"

    events = await wait_order_events(screen, order["id"], 2 + 12 + 2)
    await asyncio.sleep(0.3)
    events = order_events(screen, order["id"])
    assert len(events) == 16  # nothing lost, nothing twice
    moves = [(p["previousStatus"], p["newStatus"]) for name, p in events[2:] if name == "order.status.changed"]
    assert moves == [("CONFIRMED", "IN_PROGRESS"), ("IN_PROGRESS", "READY")]
    # events follow the changes: the order goes IN_PROGRESS right after the first item does,
    # and READY right after the last item is ready
    assert [name for name, _ in events[2:4]] == ["order.item.status.changed", "order.status.changed"]
    assert events[-1][0] == "order.status.changed" and events[-2][1]["newStatus"] == "READY"
    item_moves = [(p["itemId"], p["newStatus"]) for name, p in events if name == "order.item.status.changed"]
    assert sorted(item_moves) == sorted([(i, "IN_PROGRESS") for i in items] + [(i, "READY") for i in items])
    for i in items:  # per item, the moves arrive in the order they were made
        assert [s for x, s in item_moves if x == i] == ["IN_PROGRESS", "READY"]

    # the same item moved by both cooks at once: one wins, the other is told what happened
    other = await new_order(waiter)
    await waiter.post(f"/api/v1/orders/{other['id']}/confirm", expect=200)
    item = (await waiter.get(f"/api/v1/orders/{other['id']}"))["items"][0]["id"]
    results = await asyncio.gather(
        *(c.post(f"/api/v1/orders/{other['id']}/items/{item}/status", {"status": "IN_PROGRESS"}) for c in cooks),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    loser = next(r for r in results if isinstance(r, RelayError))
    assert loser.status == 409 and loser.body["error"]["current"]["itemStatus"] == "IN_PROGRESS"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Soup", "qty": -1, "unitPrice": "5.00"}, "qty"),
        ({"name": "Soup", "qty": 1, "unitPrice": "cheap"}, "unitPrice"),
        ({"name": "Soup", "qty": 1, "unitPrice": -3}, "unitPrice"),
        ({"name": "Soup", "qty": 1, "unitPrice": "1.999"}, "unitPrice"),
        ({"name": "", "qty": 1, "unitPrice": "5.00"}, "name"),
        ({"qty": 1, "unitPrice": "5.00"}, "name"),
    ],
)
async def test_bad_items_are_refused_and_nothing_is_stored(client_factory, staff, body, field):
    waiter = client_factory(staff["waiter"], 0)
    order = await waiter.post("/api/v1/orders", {"tableSessionId": "t-bad"}, expect=201)
    with pytest.raises(RelayError) as refused:
        await waiter.post(f"/api/v1/orders/{order['id']}/items", body)
    assert refused.value.status == 400 and refused.value.code == "VALIDATION_ERROR"
    assert refused.value.body["error"]["field"] == field
    assert (await waiter.get(f"/api/v1/orders/{order['id']}"))["items"] == []


async def test_unknown_order_item_or_status_is_refused(client_factory, staff):
    waiter = client_factory(staff["waiter"], 0)
    kitchen = client_factory(staff["kitchen"], 1)
    order = await new_order(waiter)
    await waiter.post(f"/api/v1/orders/{order['id']}/confirm", expect=200)
    before = await waiter.get(f"/api/v1/orders/{order['id']}")
    with pytest.raises(RelayError) as no_item:
        await kitchen.post(f"/api/v1/orders/{order['id']}/items/not-an-item/status", {"status": "IN_PROGRESS"})
    assert no_item.value.status == 404 and no_item.value.code == "NOT_FOUND"
    with pytest.raises(RelayError) as no_order:
        await kitchen.get(f"/api/v1/orders/{uuid.uuid4()}")
    assert no_order.value.status == 404
    item_id = before["items"][0]["id"]
    with pytest.raises(RelayError) as bad_status:
        await kitchen.post(f"/api/v1/orders/{order['id']}/items/{item_id}/status", {"status": "BURNT"})
    assert bad_status.value.status == 400 and bad_status.value.body["error"]["field"] == "status"
    with pytest.raises(RelayError) as bad_filter:
        await waiter.get("/api/v1/orders", params={"status": "EATEN"})
    assert bad_filter.value.status == 400 and bad_filter.value.body["error"]["field"] == "status"
    with pytest.raises(RelayError) as no_table:
        await waiter.post("/api/v1/orders", {})
    assert no_table.value.status == 400 and no_table.value.body["error"]["field"] == "tableSessionId"
    assert await waiter.get(f"/api/v1/orders/{order['id']}") == before


async def test_retried_confirm_with_the_same_request_id_has_one_effect_and_one_event(client_factory, sockets, staff):
    screen = await watch(client_factory, sockets, staff["kitchen"], 1)
    waiter = client_factory(staff["waiter"], 0)
    order = await new_order(waiter)
    key = {"Idempotency-Key": f"confirm-{uuid.uuid4()}"}
    first = await waiter.post(f"/api/v1/orders/{order['id']}/confirm", headers=key, expect=200)
    retry = await client_factory(staff["waiter"], 1).post(f"/api/v1/orders/{order['id']}/confirm", headers=key)
    assert first["status"] == retry["status"] == "CONFIRMED" and first["id"] == retry["id"]
    await wait_order_events(screen, order["id"], 2)
    await asyncio.sleep(0.5)
    assert [name for name, _ in order_events(screen, order["id"])] == ["order.new", "order.status.changed"]

    # a retried item move (same X-Request-ID) is one move and one pair of events too
    kitchen = client_factory(staff["kitchen"], 0)
    item_id = first["items"][0]["id"]
    move = {"X-Request-ID": f"move-{uuid.uuid4()}"}
    path = f"/api/v1/orders/{order['id']}/items/{item_id}/status"
    for _ in range(2):
        await kitchen.post(path, {"status": "IN_PROGRESS"}, headers=move, expect=200)
    await wait_order_events(screen, order["id"], 4)
    await asyncio.sleep(0.5)
    assert len(order_events(screen, order["id"])) == 4

    # a retried create with the same key is the same order
    create_key = {"Idempotency-Key": f"create-{uuid.uuid4()}"}
    created = await waiter.post("/api/v1/orders", {"tableSessionId": "t-9"}, headers=create_key, expect=201)
    again = await waiter.post("/api/v1/orders", {"tableSessionId": "t-9"}, headers=create_key, expect=201)
    assert created["id"] == again["id"]


async def test_a_socket_without_restaurant_claim_gets_no_order_events(client_factory, sockets, staff, mint):
    other_tenant = await watch(client_factory, sockets, mint("u-plain", "waiter", tenant="rest-a"), 0)
    waiter = client_factory(staff["waiter"], 0)
    order = await new_order(waiter)
    await waiter.post(f"/api/v1/orders/{order['id']}/confirm", expect=200)
    screen = await watch(client_factory, sockets, staff["manager"], 0)
    kitchen = client_factory(staff["kitchen"], 0)
    item_id = (await waiter.get(f"/api/v1/orders/{order['id']}"))["items"][0]["id"]
    await kitchen.post(f"/api/v1/orders/{order['id']}/items/{item_id}/status", {"status": "IN_PROGRESS"}, expect=200)
    await wait_order_events(screen, order["id"], 2)
    await asyncio.sleep(0.3)
    assert order_events(other_tenant) == []  # a tenantId token is not a restaurant screen


async def test_require_tenant_claim_refuses_a_handshake_without_it(stack, mint):
    port = free_port()
    index = len(stack.config.gateway_ports) + 7
    stack.start_gateway(index, port, env={"REQUIRE_TENANT_CLAIM": "true"})
    url = f"http://127.0.0.1:{port}"
    try:
        no_claim = RelaySocket(url, auth={"token": mint("u-no-claim", "waiter", tenant=None)})
        with pytest.raises(Exception, match=r"(?i)tenant|connect"):
            await no_claim.connect(timeout=5)
        await no_claim.close()
        restaurant_token = await login(url, "kitchen@restaurante.com")
        async with RelaySocket(url, auth={"token": restaurant_token}) as with_claim:
            assert (await with_claim.wait_for("connected"))["user"]["tenantId"] == "rest-a"
    finally:
        stack.kill(f"gateway-{index}", signal.SIGTERM)


async def test_order_service_death_loses_no_confirm_and_the_retry_is_one_event(stack, client_factory, sockets, staff):
    screen = await watch(client_factory, sockets, staff["kitchen"], 1)
    waiter = client_factory(staff["waiter"], 0)
    order = await new_order(waiter)
    key = {"Idempotency-Key": f"confirm-down-{uuid.uuid4()}"}
    stack.kill("order")
    try:
        with pytest.raises(RelayError) as down:
            await waiter.post(f"/api/v1/orders/{order['id']}/confirm", headers=key)
        assert down.value.status == 503 and down.value.code == "UNAVAILABLE"
    finally:
        stack.start_service("order")
    # the command waited in the durable queue and is applied now; the client's retry is a no-op
    retried = await waiter.post(f"/api/v1/orders/{order['id']}/confirm", headers=key, expect=200)
    assert retried["status"] == "CONFIRMED"
    await wait_order_events(screen, order["id"], 2)
    await asyncio.sleep(0.5)
    assert [name for name, _ in order_events(screen, order["id"])] == ["order.new", "order.status.changed"]


async def test_correlation_id_travels_from_confirm_to_the_kitchen_screen(stack, client_factory, sockets, staff):
    screen = await watch(client_factory, sockets, staff["kitchen"], 1)
    waiter = client_factory(staff["waiter"], 0)
    order = await new_order(waiter)
    trace = f"corr-order-{uuid.uuid4().hex[:8]}"
    await waiter.post(f"/api/v1/orders/{order['id']}/confirm", headers={"X-Correlation-ID": trace}, expect=200)
    await wait_order_events(screen, order["id"], 2)
    changed = log_lines(stack, "order", trace)
    assert any(line["event"] == "order.changed" and line["tenant"] == "rest-a" for line in changed)
    delivered = log_lines(stack, "gateway-1", trace)
    assert {line["wire_event"] for line in delivered if line["event"] == "delivery.emitted"} == {
        "order.new",
        "order.status.changed",
    }
