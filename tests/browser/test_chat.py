"""The web chat in a real browser: a visitor and an agent on different gateway replicas."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page, Route, expect

from tests.browser.conftest import Pages, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)


async def sign_in_visitor(page: Page, name: str) -> None:
    # keyboard only: focus the field, type, Enter submits
    await page.get_by_label("Your name").focus()
    await page.keyboard.type(name)
    await page.keyboard.press("Enter")
    await expect(page.locator("#whoami")).to_have_text(f"{name} · visitor")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")


async def sign_in_agent(page: Page) -> None:
    await page.get_by_label("Email").fill("agent@relay.dev")
    await page.get_by_label("Password").fill("demo1234")
    await page.get_by_role("button", name="Sign in as agent").click()
    await expect(page.locator("#whoami")).to_contain_text("· agent")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")


async def new_chat(page: Page, subject: str) -> str:
    await page.get_by_label("What do you need help with?").fill(subject)
    await page.get_by_role("button", name="New chat").click()
    await expect(page.locator("#chat-title")).to_have_text(subject)
    chat_id = await page.evaluate("window.relayChat.state.active")
    assert isinstance(chat_id, str) and chat_id
    return chat_id


async def open_chat(page: Page, chat_id: str) -> None:
    await page.get_by_label("Open a chat by id").fill(chat_id)
    await page.get_by_role("button", name="Open", exact=True).click()
    await expect(page.locator("#chat-status")).to_contain_text(chat_id)


async def send(page: Page, text: str, *, internal: bool = False) -> None:
    if internal:
        await page.get_by_label("Internal note (agents only)").check()
    await page.get_by_label("Message", exact=True).fill(text)
    await page.get_by_label("Message", exact=True).press("Enter")


def texts(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#messages li.message .text")


async def replica_of(page: Page) -> str:
    await expect(page.locator("#connection")).to_contain_text("replica")
    label = await page.locator("#connection").inner_text()
    return label.split("replica", 1)[1].strip()


async def visitor_and_agent(pages: Pages, name: str, subject: str) -> tuple[Page, Page, str]:
    visitor = await pages.open("/app/", replica=0)
    agent = await pages.open("/app/", replica=1)
    await sign_in_visitor(visitor, name)
    chat_id = await new_chat(visitor, subject)
    await sign_in_agent(agent)
    await open_chat(agent, chat_id)
    return visitor, agent, chat_id


async def test_visitor_and_agent_on_two_replicas_exchange_messages(pages: Pages):
    visitor, agent, _ = await visitor_and_agent(pages, "Vera", "Where is my parcel?")
    assert await replica_of(visitor) != await replica_of(agent)

    await send(visitor, "Hello, my parcel is late")
    mine = visitor.locator("#messages li.message.mine").last
    await expect(mine.locator(".state")).to_have_text("Sent")
    await expect(texts(agent)).to_have_text(["Hello, my parcel is late"])

    await send(agent, "Let me check that for you")
    await expect(texts(visitor)).to_have_text(["Hello, my parcel is late", "Let me check that for you"])
    await expect(texts(agent)).to_have_text(["Hello, my parcel is late", "Let me check that for you"])
    # the first agent answer moves the chat to IN_PROGRESS (chat:status reaches the visitor live)
    await expect(visitor.locator("#chat-status")).to_contain_text("IN_PROGRESS")

    # history on open: a reload shows the same conversation, once, in order
    await visitor.reload()
    await expect(visitor.locator("#whoami")).to_contain_text("Vera")
    await visitor.locator("#chat-list button").first.click()
    await expect(texts(visitor)).to_have_text(["Hello, my parcel is late", "Let me check that for you"])
    await screenshot(visitor, "chat-visitor")
    await screenshot(agent, "chat-agent")


async def test_visitor_never_sees_an_internal_note(pages: Pages):
    visitor, agent, _ = await visitor_and_agent(pages, "Nora", "Refund please")
    await send(visitor, "I want a refund")
    await expect(texts(agent)).to_have_text(["I want a refund"])

    await send(agent, "customer is VIP, approve quickly", internal=True)
    note = agent.locator("#messages li.message.internal")
    await expect(note.locator(".text")).to_have_text("customer is VIP, approve quickly")
    await expect(note.locator(".note-label")).to_have_text("Internal note")
    await expect(note.locator(".state")).to_have_text("Sent")
    await send(agent, "Your refund is approved")

    await expect(texts(visitor)).to_have_text(["I want a refund", "Your refund is approved"])
    # not live, and not in history after a reload either
    await visitor.reload()
    await visitor.locator("#chat-list button").first.click()
    await expect(texts(visitor)).to_have_text(["I want a refund", "Your refund is approved"])
    assert "VIP" not in await visitor.locator("#messages").inner_text()
    await expect(visitor.get_by_label("Internal note (agents only)")).to_be_hidden()
    await screenshot(agent, "chat-agent-internal-note")


async def test_agent_closes_the_chat_and_the_visitor_sees_it_live(pages: Pages):
    visitor, agent, _ = await visitor_and_agent(pages, "Cleo", "All sorted")
    await expect(visitor.get_by_role("button", name="Close chat")).to_have_count(0)
    await agent.get_by_role("button", name="Close chat").click()
    await expect(agent.locator("#chat-status")).to_contain_text("CLOSED")
    await expect(visitor.locator("#chat-status")).to_contain_text("CLOSED")
    await expect(agent.get_by_role("button", name="Close chat")).to_be_hidden()


async def test_message_markup_is_shown_as_text_never_run(pages: Pages):
    visitor, agent, _ = await visitor_and_agent(pages, "Mallory", "<b>bold subject</b>")
    payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    await send(visitor, payload)
    for page in (visitor, agent):
        await expect(texts(page)).to_have_text([payload])
        await expect(page.locator("#messages img")).to_have_count(0)
        await expect(page.locator("#messages script")).to_have_count(0)
        assert await page.evaluate("window.__xss") is None
    await expect(visitor.locator("#chat-title")).to_have_text("<b>bold subject</b>")
    await expect(visitor.locator("#chat-title b")).to_have_count(0)


async def test_failed_send_shows_failed_and_retry_delivers_once(pages: Pages):
    visitor, agent, _ = await visitor_and_agent(pages, "Rita", "Flaky network")

    async def drop(route: Route) -> None:
        await route.abort("connectionfailed")

    await visitor.route("**/v2/messages", drop)
    await send(visitor, "this one needs a retry")
    failed = visitor.locator("#messages li.message.mine").last
    await expect(failed.locator(".state")).to_have_text("Failed")
    await expect(failed.get_by_role("button", name=re.compile("Retry"))).to_be_visible()
    await screenshot(visitor, "chat-failed-send")

    await visitor.unroute("**/v2/messages", drop)
    await failed.get_by_role("button", name=re.compile("Retry")).click()
    await expect(visitor.locator("#messages li.message.mine .state")).to_have_text(["Sent"])
    await expect(texts(agent)).to_have_text(["this one needs a retry"])
    await asyncio.sleep(0.5)
    await expect(texts(agent)).to_have_count(1)
    await expect(texts(visitor)).to_have_count(1)


async def test_agent_sees_unread_badges_across_chats(pages: Pages):
    visitor_a = await pages.open("/app/", replica=0)
    visitor_b = await pages.open("/app/", replica=1)
    agent = await pages.open("/app/", replica=0)
    await sign_in_visitor(visitor_a, "Ann")
    await sign_in_visitor(visitor_b, "Ben")
    chat_a = await new_chat(visitor_a, "Chat A")
    chat_b = await new_chat(visitor_b, "Chat B")
    await sign_in_agent(agent)
    await open_chat(agent, chat_b)
    await open_chat(agent, chat_a)  # chat A is open, chat B is in the background

    await send(visitor_b, "first in B")
    await send(visitor_b, "second in B")
    await send(visitor_a, "hello from A")
    await expect(texts(agent)).to_have_text(["hello from A"])
    badge_b = agent.locator(f'#chat-list button[data-chat-id="{chat_b}"] .badge')
    await expect(badge_b).to_have_text("2")
    await expect(badge_b).to_have_attribute("aria-label", "2 unread")
    await expect(agent.locator(f'#chat-list button[data-chat-id="{chat_a}"] .badge')).to_have_count(0)
    await screenshot(agent, "chat-unread-badges")

    await agent.locator(f'#chat-list button[data-chat-id="{chat_b}"]').click()
    await expect(texts(agent)).to_have_text(["first in B", "second in B"])
    await expect(badge_b).to_have_count(0)


async def test_chat_fits_a_narrow_screen(pages: Pages):
    page = await pages.open("/app/", replica=0, width=375, height=740)
    await sign_in_visitor(page, "Mia")
    await new_chat(page, "On my phone")
    await send(page, "typing on a small screen " * 6)
    await expect(page.locator("#messages li.message.mine .state")).to_have_text(["Sent"])
    overflow = await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page scrolls sideways by {overflow}px on a 375px screen"
    await screenshot(page, "chat-narrow")


async def test_agent_sees_the_visitor_typing(pages: Pages):
    visitor, agent, _ = await visitor_and_agent(pages, "Tom", "Typing test")
    # typing is not kept for late joiners: the agent's page shows the chat before its join is answered, and one
    # burst of keys sends one typing:start, so the test waits until the agent is in the room (a message reaches it)
    await send(visitor, "hello")
    await expect(texts(agent)).to_have_text(["hello"])
    await visitor.get_by_label("Message", exact=True).press_sequentially("I am wri", delay=30)
    await expect(agent.locator("#typing")).to_have_text("Tom is typing…")
    # the visitor pauses: the page sends typing:stop after 2 s idle and the indicator goes
    await expect(agent.locator("#typing")).to_have_text("", timeout=6_000)
    await screenshot(agent, "chat-typing-cleared")

    # a client that starts typing and never stops (a closed laptop): it still ends, within 5 s
    chat_id = await visitor.evaluate("window.relayChat.state.active")
    started = asyncio.get_running_loop().time()
    await visitor.evaluate("id => window.relayChat.state.socket.emit('typing:start', {chatId: id})", chat_id)
    await expect(agent.locator("#typing")).to_have_text("Tom is typing…")
    await expect(agent.locator("#typing")).to_have_text("", timeout=9_000)
    assert asyncio.get_running_loop().time() - started >= 4.0, "the indicator must last until the 5 s expiry"


def tiny_png() -> bytes:
    """A valid 2x2 PNG, made here (no fixture files)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x0b\x57\xd0" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def test_attachment_upload_shows_progress_and_reaches_the_agent(pages: Pages):
    visitor, agent, _ = await visitor_and_agent(pages, "Fay", "Invoice attached")
    await visitor.get_by_label("Attach a file").set_input_files(
        {"name": "invoice.txt", "mimeType": "text/plain", "buffer": b"invoice 42\n" * 2000}
    )
    await expect(visitor.locator("#upload-status")).to_contain_text("Uploaded invoice.txt")
    link = agent.locator("#messages li.message .attachment a")
    await expect(link).to_contain_text("invoice.txt")
    # the agent can fetch what the link points at
    href = await link.get_attribute("href")
    assert href and href.startswith("/")
    served = await agent.request.get(href)
    assert served.status == 200 and await served.body() == b"invoice 42\n" * 2000

    await visitor.get_by_label("Attach a file").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": tiny_png()}
    )
    image = agent.locator('#messages li.message .attachment img[alt="photo.png"]')
    await expect(image).to_have_count(1)
    # the image really loads (served to a member, allowed by the page's CSP)
    await agent.wait_for_function(
        "() => { const i = document.querySelector('#messages .attachment img[alt=\"photo.png\"]');"
        " return i && i.complete && i.naturalWidth === 2; }"
    )
    await screenshot(agent, "chat-attachments")


async def test_forced_disconnect_reconnects_and_fills_the_gap(pages: Pages, web_stack):
    """Kill the visitor's replica; the agent writes meanwhile; the page comes back with exactly the gap."""
    visitor, agent, _ = await visitor_and_agent(pages, "Gus", "Gap test")
    await send(visitor, "before the outage")
    await expect(texts(agent)).to_have_text(["before the outage"])

    web_stack.kill("gateway-0")
    await expect(visitor.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    await screenshot(visitor, "chat-reconnecting")
    for text in ("missed one", "missed two", "missed three"):
        await send(agent, text)
    await expect(texts(agent)).to_have_count(4)

    await asyncio.to_thread(web_stack.start_gateway, 0, web_stack.config.gateway_ports[0])
    await expect(visitor.locator("#connection")).to_have_attribute("data-state", "connected", timeout=30_000)
    want = ["before the outage", "missed one", "missed two", "missed three"]
    await expect(texts(visitor)).to_have_text(want)
    await send(agent, "after the outage")
    await expect(texts(visitor)).to_have_text([*want, "after the outage"])
    await asyncio.sleep(0.5)
    seqs = await visitor.locator("#messages li.message").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == sorted(set(seqs)) and len(seqs) == 5
