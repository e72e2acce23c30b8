"""Gateway delivery pieces without servers: interest refcounting, duplicate drop, support rendering."""

from __future__ import annotations

from relay_contracts import Envelope
from relay_gateway.delivery import RecentIds
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
