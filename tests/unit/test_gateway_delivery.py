"""Gateway delivery pieces without servers: interest refcounting, duplicate drop, support rendering, the
consumer's turns under a run of waiting events."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from relay_contracts import Envelope
from relay_gateway.delivery import EventDelivery, RecentIds
from relay_gateway.dialects import render
from relay_gateway.dialects.support import TABLE
from relay_gateway.interest import Interest


async def test_binding_follows_the_first_and_last_local_member():
    calls: list[tuple[str, str]] = []

    async def bind(p: str) -> None:
        calls.append(("bind", p))

    async def unbind(p: str) -> None:
        calls.append(("unbind", p))

    interest = Interest(bind, unbind)
    await interest.add("s1", "acme.conv.c1.#")
    await interest.add("s2", "acme.conv.c1.#")
    await interest.add("s1", "acme.conv.c1.#")  # joining twice changes nothing
    await interest.remove("s1", "acme.conv.c1.#")
    assert calls == [("bind", "acme.conv.c1.#")]
    await interest.remove_all("s2")
    assert calls == [("bind", "acme.conv.c1.#"), ("unbind", "acme.conv.c1.#")]
    assert interest.patterns() == []


def test_recent_ids_drop_redeliveries_and_forget_the_oldest():
    recent = RecentIds(size=2)
    assert [recent.seen(i) for i in ("a", "b", "a", "b")] == [False, False, True, True]
    assert recent.seen("c") is False  # evicts the least recently seen ("a")
    assert (recent.seen("b"), recent.seen("a")) == (True, False)


def message_event(internal: bool) -> Envelope:
    data = {
        "messageId": "m1",
        "conversationId": "c1",
        "seq": 7,
        "senderId": "a1",
        "senderRoles": ["agent"],
        "type": "text",
        "content": "x",
        "isInternal": internal,
        "isFirstResponse": False,
        "clientMessageId": "k",
        "replyTo": None,
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    return Envelope(type="message.created", tenant="acme", correlationId="c", data=data)


def test_support_messages_go_to_the_chat_room_and_notes_only_to_agents():
    public = render(TABLE, message_event(internal=False))
    note = render(TABLE, message_event(internal=True))
    assert [(d.namespace, d.room, d.event) for d in public] == [("/", "chat:c1", "message:new")]
    assert [(d.namespace, d.room, d.event) for d in note] == [("/", "chat:c1:commercial", "message:new")]
    assert public[0].payload["seq"] == 7 and public[0].payload["chatId"] == "c1"
    assert set(public[0].payload) >= {
        "messageId",
        "chatId",
        "senderId",
        "senderName",
        "content",
        "type",
        "isInternal",
        "isFirstResponse",
        "sentAt",
        "seq",
    }


class FakeStream:
    """What EventDelivery consumes: an inbox of (link, tag, body), handed over without a pass of the loop."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.inbox = deque((FakeLink(), n + 1, body) for n, body in enumerate(bodies))
        self.done = asyncio.Event()

    async def deliveries(self) -> AsyncIterator[tuple[Any, int, bytes]]:
        while self.inbox:
            yield self.inbox.popleft()
        self.done.set()
        await asyncio.Event().wait()  # a live stream waits for more


class FakeLink:
    is_closed = False

    def ack(self, tag: int) -> None:
        pass


async def test_a_long_run_of_waiting_events_gives_the_loop_a_turn_and_keeps_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200 waiting events of ~1 ms each: other work (a socket's read, a REST call) runs between them, not after
    all 200 (~200 ms later), and the events are still handled in their order."""
    delivery = EventDelivery(socketio.AsyncServer(async_mode="asgi"), None, "gw-unit", {})  # type: ignore[arg-type]
    handled: list[int] = []

    async def deliver(envelope: Envelope) -> None:
        time.sleep(0.001)  # noqa: ASYNC251 - the emit's CPU work, without a pause of its own
        handled.append(envelope.data["n"])

    monkeypatch.setattr(delivery, "deliver", deliver)
    events = [Envelope(type="x", tenant="acme", correlationId="c", data={"n": n}) for n in range(200)]
    stream = FakeStream([e.to_bytes() for e in events])
    other_ran_after: list[int] = []

    async def other_work() -> None:
        await asyncio.sleep(0)
        other_ran_after.append(len(handled))

    other = asyncio.create_task(other_work())
    consumer = asyncio.create_task(delivery._consume(stream))  # type: ignore[arg-type]
    await asyncio.wait_for(stream.done.wait(), 5)
    consumer.cancel()
    await other
    assert handled == list(range(200))
    assert other_ran_after and other_ran_after[0] < 50, other_ran_after
