"""The ops dashboard in a real browser: live figures of both replicas, from /ops/stats."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Pages, screenshot
from tests.browser.test_chat import new_chat, open_chat, send, sign_in_agent, sign_in_visitor, texts

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)


async def test_dashboard_shows_both_replicas_presence_and_traffic(pages: Pages, web_stack):
    visitor = await pages.open("/app/", replica=0)
    agent = await pages.open("/app/", replica=1)
    await sign_in_visitor(visitor, "Olga")
    chat_id = await new_chat(visitor, "Ops test")
    await sign_in_agent(agent)
    await open_chat(agent, chat_id)

    ops = await pages.open("/app/ops?interval=1000", replica=0)
    await ops.get_by_label("Email").fill("admin@relay.dev")
    await ops.get_by_label("Password").fill("demo1234")
    await ops.get_by_role("button", name="Sign in").click()
    await expect(ops.locator("#connection")).to_have_attribute("data-state", "connected")

    # both replicas announce themselves, whichever one answers
    await expect(ops.locator("#tile-replicas .value")).to_have_text("2")
    rows = ops.locator("#replicas tbody tr")
    await expect(rows).to_have_count(2)
    for port in web_stack.config.gateway_ports:
        await expect(ops.locator("#replicas")).to_contain_text(f"127.0.0.1:{port}")
    # presence by role of the admin's tenant (acme): the visitor, the agent, the admin's own page
    # (role, users seen by the gateways, sockets, users per the presence service)
    presence = ops.locator("#presence tbody")
    for role in ("visitor", "commercial"):
        await expect(presence.locator("tr", has_text=role).locator("td")).to_have_text([role, "1", "1", "1"])
    await expect(ops.locator("#tile-service-users .value")).to_have_text("2")
    await expect(ops.locator("#rooms")).to_contain_text(f"chat:{chat_id}")

    for i in range(6):
        await send(visitor, f"load {i}")
    await expect(texts(agent)).to_have_count(6)
    # the rates and latency move within a heartbeat or two; the replicas' history (what the charts draw)
    # keeps them, so a poll that falls between two heartbeats does not miss them
    await ops.wait_for_function(
        """() => { const s = window.relayOps.state.last; if (!s) return false;
             const samples = s.replicas.flatMap(r => r.history);
             return samples.some(p => p.messagesPerSecond > 0) && samples.some(p => p.latencyMs !== null); }""",
        timeout=20_000,
    )
    drawn = await ops.evaluate(
        """() => { const c = document.getElementById('rate-chart');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let blue = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (d[i] < 40 && d[i+1] > 70 && d[i+1] < 110 && d[i+2] > 180) blue++;
        }
        return blue; }"""
    )
    assert drawn > 20, "the messages/s line was not drawn"
    await screenshot(ops, "ops-dashboard")


async def test_ops_stats_is_for_admins_only(pages: Pages):
    agent = await pages.open("/app/", replica=1)
    await sign_in_agent(agent)
    answer = await agent.request.get("/ops/stats")
    assert answer.status == 403
    assert (await answer.json())["error"]["code"] == "PERMISSION_DENIED"
    anonymous = await pages.open("/app/ops", replica=0)
    assert (await anonymous.request.get("/ops/stats")).status == 401
    await expect(anonymous.get_by_role("heading", name="Sign in as an administrator")).to_be_visible()
