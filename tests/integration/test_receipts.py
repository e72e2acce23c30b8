"""Read receipts and participant permissions in the message service, on a real MongoDB-wire server."""

from __future__ import annotations

import uuid

import pytest
from relay_contracts import Envelope, RelayError
from relay_contracts import receipts as r
from relay_message import handlers, receipts

from tests.integration.test_message_store import command, make_deps


async def send(deps, user: str, roles: tuple[str, ...], cid: str, text: str, **extra) -> dict:
    data = {"conversationId": cid, "content": text, "clientMessageId": uuid.uuid4().hex, **extra}
    return await handlers.send_message(command("message.send", user, roles, **data), deps)


async def test_mark_read_one_then_all_stores_receipts_and_recounts_unread(db):
    published: list[Envelope] = []
    deps = await make_deps(db, published)
    create = command(
        "conversation.create",
        "ana",
        ("cliente",),
        conversationId="r1",
        type="group",
        participants=[{"userId": "beto", "role": "experto"}, {"userId": "caro", "role": "cliente"}],
    )
    await handlers.create_conversation(create, deps)
    ids = [(await send(deps, "ana", ("cliente",), "r1", f"m{i}"))["messageId"] for i in range(3)]
    await send(deps, "beto", ("experto",), "r1", "mine")
    stats = (await deps.conversations.get("acme", "r1"))["stats"]["unread"]
    assert (stats["beto"], stats["caro"], stats.get("ana", 0)) == (3, 4, 1)

    one = await receipts.mark_read(
        command(r.MARK_READ, "beto", ("experto",), conversationId="r1", messageId=ids[1]), deps
    )
    assert one["messageIds"] == [ids[1]] and one["unreadCount"] == 2 and one["all"] is False
    rest = await receipts.mark_read(command(r.MARK_READ, "beto", ("experto",), conversationId="r1"), deps)
    assert rest["messageIds"] == [ids[0], ids[2]] and rest["unreadCount"] == 0
    again = await receipts.mark_read(command(r.MARK_READ, "beto", ("experto",), conversationId="r1"), deps)
    assert again["messageIds"] == []
    conversation = await deps.conversations.get("acme", "r1")
    assert conversation["stats"]["unread"]["beto"] == 0 and conversation["stats"]["unread"]["caro"] == 4
    reads = [e for e in published if e.type == r.MESSAGE_READ]
    assert [e.data["messageIds"] for e in reads] == [[ids[1]], [ids[0], ids[2]]]  # nothing for the no-op
    stored = await db["messages"].find({"conversationId": "r1", "senderId": "ana"}).sort("seq", 1).to_list()
    assert [[x["userId"] for x in m["reads"]] for m in stored] == [["beto"]] * 3
    assert {m["deliveryState"] for m in stored} == {"read"}

    with pytest.raises(RelayError) as missing:
        await receipts.mark_read(
            command(r.MARK_READ, "beto", ("experto",), conversationId="r1", messageId="nope"), deps
        )
    assert missing.value.code == "NOT_FOUND"
    with pytest.raises(RelayError) as stranger:
        await receipts.mark_read(command(r.MARK_READ, "zoe", ("cliente",), conversationId="r1"), deps)
    assert stranger.value.code == "PERMISSION_DENIED"


async def test_permissions_reply_and_priority_are_enforced_and_stored(db):
    deps = await make_deps(db, [])
    create = command(
        "conversation.create",
        "ana",
        ("admin",),
        conversationId="p1",
        type="group",
        participants=[
            {"userId": "mudo", "role": "cliente", "permissions": {"canSend": False}},
            {"userId": "mod", "role": "Moderador"},
        ],
    )
    conversation = await handlers.create_conversation(create, deps)
    perms = {p["userId"]: (p["role"], p["permissions"]) for p in conversation["participants"]}
    assert perms == {
        "ana": ("admin", {"canSend": True, "canDelete": True, "canModerate": True}),
        "mudo": ("cliente", {"canSend": False, "canDelete": False, "canModerate": False}),
        "mod": ("moderador", {"canSend": True, "canDelete": True, "canModerate": True}),
    }
    with pytest.raises(RelayError) as denied:
        await send(deps, "mudo", ("cliente",), "p1", "hola")
    assert denied.value.code == "PERMISSION_DENIED"
    first = await send(deps, "mod", ("moderador",), "p1", "hola", priority="urgent", metadata={"k": 1})
    reply = await send(deps, "ana", ("admin",), "p1", "re", replyTo=first["messageId"])
    assert (first["priority"], first["metadata"], reply["replyTo"]) == ("urgent", {"k": 1}, first["messageId"])
    with pytest.raises(RelayError) as dangling:
        await send(deps, "ana", ("admin",), "p1", "re", replyTo="no-such-message")
    assert dangling.value.code == "NOT_FOUND" and dangling.value.field == "replyTo"
    assert await db["messages"].count_documents({"conversationId": "p1"}) == 2


async def test_locate_message_answers_only_to_readers(db):
    deps = await make_deps(db, [])
    create = command("conversation.create", "ana", ("cliente",), conversationId="l1", type="direct")
    await handlers.create_conversation(create, deps)
    sent = await send(deps, "ana", ("cliente",), "l1", "hola")
    found = await receipts.locate_message(
        command("message.locate", "ana", ("cliente",), messageId=sent["messageId"]), deps
    )
    assert found == {"messageId": sent["messageId"], "conversationId": "l1"}
    for user, tenant_cmd in (("zoe", "acme"), ("ana", "globex")):
        cmd = command("message.locate", user, ("cliente",), messageId=sent["messageId"])
        if tenant_cmd != "acme":
            cmd = cmd.model_copy(update={"tenant": tenant_cmd})
        with pytest.raises(RelayError) as hidden:
            await receipts.locate_message(cmd, deps)
        assert hidden.value.code == "NOT_FOUND"  # a stranger cannot tell a hidden message from a missing one
