"""Accessibility basics on every page, signed in: labels, names, keyboard reach, text contrast (WCAG AA)."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Pages
from tests.browser.test_chat import new_chat, send, sign_in_agent, sign_in_visitor

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)

# every visible form control has a label, every button a name
UNLABELLED = """() => [...document.querySelectorAll('input, textarea, select, button')]
  .filter(el => el.offsetParent !== null && el.type !== 'hidden')
  .filter(el => {
    if (el.tagName === 'BUTTON') return !(el.textContent.trim() || el.getAttribute('aria-label'));
    return !((el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby'));
  })
  .map(el => el.outerHTML.slice(0, 120))"""

# WCAG 2 contrast of every visible text node's element against its first opaque background
LOW_CONTRAST = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (let n = el; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const el = t.parentElement;
    if (!t.textContent.trim() || !el || el.offsetParent === null) continue;
    if (el.closest('.visually-hidden, .skip-link, input, textarea, button:disabled')) continue;
    const style = getComputedStyle(el);
    const fg = rgb(style.color).slice(0, 3), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && +style.fontWeight >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(`${t.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)}`);
  }
  return bad;
}"""


async def check(page: Page, name: str) -> None:
    assert await page.evaluate(UNLABELLED) == [], f"{name}: controls without a label or name"
    assert await page.evaluate(LOW_CONTRAST) == [], f"{name}: text below WCAG AA contrast"


async def test_signin_and_chat_pages_are_labelled_and_readable(pages: Pages):
    visitor = await pages.open("/app/", replica=0)
    await expect(visitor.get_by_role("button", name="Start as visitor")).to_be_visible()
    await check(visitor, "chat sign-in")
    await sign_in_visitor(visitor, "Ada")
    await new_chat(visitor, "Accessibility")
    await send(visitor, "hello")
    await expect(visitor.locator("#messages li.message.mine .state")).to_have_text(["Sent"])
    await check(visitor, "chat (visitor)")

    agent = await pages.open("/app/", replica=1)
    await sign_in_agent(agent)
    await check(agent, "chat (agent)")

    # keyboard: from the message box, Tab reaches the note toggle, the file picker and Send
    await agent.get_by_label("Open a chat by id").fill(await visitor.evaluate("window.relayChat.state.active"))
    await agent.keyboard.press("Enter")
    await agent.get_by_label("Message", exact=True).focus()
    reached = []
    for _ in range(6):
        await agent.keyboard.press("Tab")
        reached.append(await agent.evaluate("document.activeElement.id || document.activeElement.textContent"))
    assert {"internal-note", "file-input", "send-button"} <= set(reached), reached


async def test_kitchen_and_ops_pages_are_labelled_and_readable(pages: Pages):
    kitchen = await pages.open("/app/kitchen", replica=0)
    await expect(kitchen.get_by_role("button", name="Sign in")).to_be_visible()
    await check(kitchen, "kitchen sign-in")
    await kitchen.get_by_label("Password").fill("password123")
    await kitchen.get_by_label("Password").press("Enter")
    await expect(kitchen.locator("#connection")).to_have_attribute("data-state", "connected")
    await check(kitchen, "kitchen board")

    ops = await pages.open("/app/ops", replica=1)
    await ops.get_by_label("Password").fill("demo1234")
    await ops.get_by_label("Password").press("Enter")
    await expect(ops.locator("#tile-replicas .value")).to_have_text("2")
    await check(ops, "ops dashboard")
