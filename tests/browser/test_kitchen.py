"""The kitchen board in a real browser: orders of the signed-in restaurant, live."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect
from relay_sdk import RelayClient

from tests.browser.conftest import Pages, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)


async def place_order(waiter: RelayClient, table: str, *items: str) -> dict:
    order = await waiter.post("/api/v1/orders", {"tableSessionId": table}, expect=201)
    order_id = order.get("orderId") or order["id"]
    for name in items:
        item = {"name": name, "qty": 2, "unitPrice": "15.50"}
        await waiter.post(f"/api/v1/orders/{order_id}/items", item, expect=201)
    return await waiter.post(f"/api/v1/orders/{order_id}/confirm", {})


def restaurant_client(url: str, mint, user: str, role: str) -> RelayClient:  # type: ignore[no-untyped-def]
    return RelayClient(url, token=mint(user, role, tenant="rest-a", claim="restaurantId"))


async def sign_in_kitchen(page, email: str = "kitchen@restaurante.com") -> None:  # type: ignore[no-untyped-def]
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill("password123")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")


async def test_board_updates_live_from_the_rest_api_and_its_own_buttons(pages: Pages, web_stack, mint):
    board = await pages.open("/app/kitchen", replica=0)
    await sign_in_kitchen(board)
    other_restaurant = await pages.open("/app/kitchen", replica=1)
    await sign_in_kitchen(other_restaurant, "kitchen@restaurante-b.com")

    waiter = restaurant_client(web_stack.gateway_urls[1], mint, "waiter-1", "WAITER")
    kitchen = restaurant_client(web_stack.gateway_urls[1], mint, "kitchen-1", "KITCHEN")
    try:
        order = await place_order(waiter, "T7", "Hamburguesa", "Ensalada")
        order_id = order.get("orderId") or order["id"]
        card = board.locator(f'.card[data-order-id="{order_id}"]')
        # order.new puts the card in "New"
        await expect(board.locator('.column[data-status="CONFIRMED"]').locator(card)).to_have_count(1)
        await expect(card.locator("h3")).to_have_text("Table T7")
        burger = next(i for i in order["items"] if i["name"] == "Hamburguesa")
        salad = next(i for i in order["items"] if i["name"] == "Ensalada")

        # an item moved through the REST API: order.item.status.changed + order.status.changed
        await kitchen.post(f"/api/v1/orders/{order_id}/items/{burger['id']}/status", {"status": "IN_PROGRESS"})
        await expect(card.locator(f'[data-item-id="{burger["id"]}"] .status')).to_have_text("IN_PROGRESS")
        await expect(board.locator('.column[data-status="IN_PROGRESS"]').locator(card)).to_have_count(1)

        # and through the board's own buttons (kitchen role)
        await board.get_by_role("button", name="Ready Hamburguesa (Table T7)").click()
        await board.get_by_role("button", name="Start Ensalada (Table T7)").click()
        await board.get_by_role("button", name="Ready Ensalada (Table T7)").click()
        await expect(board.locator('.column[data-status="READY"]').locator(card)).to_have_count(1)
        await expect(card.locator(f'[data-item-id="{salad["id"]}"] .status')).to_have_text("READY")
        await screenshot(board, "kitchen-board")

        # restaurant B never sees restaurant A's order
        await expect(other_restaurant.locator(".card")).to_have_count(0)
        fresh = await kitchen.get(f"/api/v1/orders/{order_id}")
        assert fresh["status"] == "READY"
    finally:
        await waiter.close()
        await kitchen.close()


async def test_waiter_sees_the_board_without_kitchen_buttons(pages: Pages, web_stack, mint):
    waiter = restaurant_client(web_stack.gateway_urls[0], mint, "waiter-1", "WAITER")
    try:
        order = await place_order(waiter, "T9", "Sopa")
    finally:
        await waiter.close()
    order_id = order.get("orderId") or order["id"]
    page = await pages.open("/app/kitchen", replica=1, width=390, height=800)
    await sign_in_kitchen(page, "waiter@restaurante.com")
    card = page.locator(f'.card[data-order-id="{order_id}"]')
    await expect(card).to_contain_text("Sopa \u00d72")
    await expect(card.get_by_role("button")).to_have_count(0)
    overflow = await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    await screenshot(page, "kitchen-board-narrow")


async def test_board_catches_up_after_its_replica_dies(pages: Pages, web_stack, mint):
    """Changes made while the board's replica is down show up once the board reconnects."""
    board = await pages.open("/app/kitchen", replica=0)
    await sign_in_kitchen(board)
    waiter = restaurant_client(web_stack.gateway_urls[1], mint, "waiter-1", "WAITER")
    kitchen = restaurant_client(web_stack.gateway_urls[1], mint, "kitchen-1", "KITCHEN")
    try:
        order = await place_order(waiter, "T12", "Paella")
        order_id = order.get("orderId") or order["id"]
        card = board.locator(f'.card[data-order-id="{order_id}"]')
        await expect(card).to_have_count(1)

        web_stack.kill("gateway-0")
        await expect(board.locator("#connection")).to_have_attribute("data-state", "reconnecting")
        item = order["items"][0]
        await kitchen.post(f"/api/v1/orders/{order_id}/items/{item['id']}/status", {"status": "IN_PROGRESS"})
        later = await place_order(waiter, "T13", "Tortilla")

        await asyncio.to_thread(web_stack.start_gateway, 0, web_stack.config.gateway_ports[0])
        await expect(board.locator("#connection")).to_have_attribute("data-state", "connected", timeout=30_000)
        await expect(board.locator('.column[data-status="IN_PROGRESS"]').locator(card)).to_have_count(1)
        later_id = later.get("orderId") or later["id"]
        await expect(board.locator(f'.card[data-order-id="{later_id}"] h3')).to_have_text("Table T13")
    finally:
        await waiter.close()
        await kitchen.close()


async def test_manager_cancels_an_order_and_it_leaves_every_board(pages: Pages, web_stack, mint):
    manager = await pages.open("/app/kitchen", replica=0)
    await sign_in_kitchen(manager, "manager@restaurante.com")
    kitchen = await pages.open("/app/kitchen", replica=1)
    await sign_in_kitchen(kitchen)
    waiter = restaurant_client(web_stack.gateway_urls[1], mint, "waiter-1", "WAITER")
    try:
        order = await place_order(waiter, "T21", "Gazpacho")
        order_id = order.get("orderId") or order["id"]
        for page in (manager, kitchen):
            await expect(page.locator(f'.card[data-order-id="{order_id}"]')).to_have_count(1)
        # only managers get the button
        await expect(kitchen.get_by_role("button", name="Cancel order of Table T21")).to_have_count(0)
        await manager.get_by_role("button", name="Cancel order of Table T21").click()
        for page in (manager, kitchen):  # order.status.changed CANCELLED, on both replicas
            await expect(page.locator(f'.card[data-order-id="{order_id}"]')).to_have_count(0)
        stored = await waiter.get(f"/api/v1/orders/{order_id}")
        assert stored["status"] == "CANCELLED"
        assert {i["status"] for i in stored["items"]} == {"CANCELLED"}
    finally:
        await waiter.close()
