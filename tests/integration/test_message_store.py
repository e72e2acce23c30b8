"""The message service's storage on a real MongoDB-wire server: seq and idempotency hold across instances."""

from __future__ import annotations

import asyncio
import uuid

from relay_contracts import Envelope
from relay_contracts.envelope import Actor
from relay_message import handlers
from relay_message.adapters.repo import CLIENT_CONFLICT, SEQ_CONFLICT, ConversationRepo, MessageRepo
from relay_message.handlers import Deps


def command(type_: str, user: str, roles: tuple[str, ...], **data) -> Envelope:
    return Envelope(type=type_, tenant="acme", correlationId="c", actor=Actor(userId=user, roles=roles), data=data)


async def make_deps(db, published: list) -> Deps:
    async def publish(key: str, event: Envelope) -> None:
        published.append(event)

    deps = Deps(ConversationRepo(db), MessageRepo(db), publish)
    await deps.conversations.ensure_indexes()
    await deps.messages.ensure_indexes()
    return deps


async def test_two_service_instances_sending_at_once_keep_seq_gap_free(db):
    published: list[Envelope] = []
    one, two = await make_deps(db, published), await make_deps(db, published)  # separate in-process locks
    await handlers.create_conversation(command("conversation.create", "v1", ("visitor",), conversationId="c1"), one)

    async def send(deps: Deps, i: int) -> int:
        data = {"conversationId": "c1", "content": f"m{i}", "clientMessageId": uuid.uuid4().hex}
        return (await handlers.send_message(command("message.send", "v1", ("visitor",), **data), deps))["seq"]

    seqs = await asyncio.gather(*(send((one, two)[i % 2], i) for i in range(30)))
    assert sorted(seqs) == list(range(1, 31))
    page = await handlers.get_history(
        command("message.history", "v1", ("visitor",), conversationId="c1", limit=100, afterSeq=0), one
    )
    assert [m["seq"] for m in page["messages"]] == list(range(1, 31))
    conversation = await one.conversations.get("acme", "c1")
    assert conversation is not None and conversation["lastSeq"] == 30
    assert conversation["stats"]["totalMessages"] == 30


async def test_same_client_message_id_from_two_instances_stores_one_message(db):
    published: list[Envelope] = []
    one, two = await make_deps(db, published), await make_deps(db, published)
    await handlers.create_conversation(command("conversation.create", "v1", ("visitor",), conversationId="c2"), one)
    data = {"conversationId": "c2", "content": "once", "clientMessageId": "dup"}
    results = await asyncio.gather(
        *(handlers.send_message(command("message.send", "v1", ("visitor",), **data), d) for d in (one, two, one, two))
    )
    assert len({r["messageId"] for r in results}) == 1
    assert await db["messages"].count_documents({"conversationId": "c2"}) == 1


async def test_visitors_history_never_contains_internal_notes(db):
    deps = await make_deps(db, [])
    await handlers.create_conversation(command("conversation.create", "v1", ("visitor",), conversationId="c3"), deps)
    for user, roles, internal in (
        ("v1", ("visitor",), False),
        ("a1", ("commercial",), True),
        ("a1", ("commercial",), False),
    ):
        data = {"conversationId": "c3", "content": "x", "clientMessageId": uuid.uuid4().hex, "isInternal": internal}
        await handlers.send_message(command("message.send", user, roles, **data), deps)
    visitor = await handlers.get_history(command("message.history", "v1", ("visitor",), conversationId="c3"), deps)
    agent = await handlers.get_history(command("message.history", "a1", ("commercial",), conversationId="c3"), deps)
    assert [m["seq"] for m in visitor["messages"]] == [1, 3]
    assert [m["seq"] for m in agent["messages"]] == [1, 2, 3]


async def test_a_batch_insert_stops_at_the_first_duplicate_and_says_which_index(db):
    repo = MessageRepo(db)
    await repo.ensure_indexes()

    def doc(seq: int, client_id: str) -> dict:
        return {
            "_id": uuid.uuid4().hex,
            "tenant": "acme",
            "conversationId": "c3",
            "seq": seq,
            "senderId": "v1",
            "clientMessageId": client_id,
        }

    assert await repo.insert_batch([doc(1, "a"), doc(2, "b")]) == (2, None)
    assert await repo.insert_batch([doc(3, "c"), doc(2, "d"), doc(4, "e")]) == (1, SEQ_CONFLICT)
    assert await repo.insert_batch([doc(4, "f"), doc(5, "a"), doc(6, "g")]) == (1, CLIENT_CONFLICT)
    stored = await db["messages"].find({"conversationId": "c3"}).sort("seq", 1).to_list()
    assert [(d["seq"], d["clientMessageId"]) for d in stored] == [(1, "a"), (2, "b"), (3, "c"), (4, "f")]
    assert await repo.last_seq("acme", "c3") == 4


async def test_two_instances_racing_in_batches_keep_seq_gap_free_and_publish_each_once(db):
    published: list[Envelope] = []
    one, two = await make_deps(db, published), await make_deps(db, published)
    await handlers.create_conversation(command("conversation.create", "v1", ("visitor",), conversationId="c4"), one)

    async def send(deps: Deps, i: int) -> int:
        data = {"conversationId": "c4", "content": f"m{i}", "clientMessageId": f"k{i}"}
        return (await handlers.send_message(command("message.send", "v1", ("visitor",), **data), deps))["seq"]

    for round_ in range(3):  # each instance's tail goes stale while the other writes
        await asyncio.gather(*(send((one, two)[(i + round_) % 2], round_ * 40 + i) for i in range(40)))
    stored = await db["messages"].find({"conversationId": "c4"}).sort("seq", 1).to_list()
    assert [d["seq"] for d in stored] == list(range(1, 121))
    created = [e.data["seq"] for e in published if e.type == "message.created" and e.data["conversationId"] == "c4"]
    assert sorted(created) == list(range(1, 121))
    conversation = await one.conversations.get("acme", "c4")
    assert conversation is not None and conversation["lastSeq"] == 120
    assert conversation["stats"]["totalMessages"] == 120
