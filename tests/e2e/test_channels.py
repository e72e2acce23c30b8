"""seed-000 enterprise chat on `/chat`, played with real Socket.IO clients spread over both replicas."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from relay_sdk import RelayClient, RelaySocket
from relay_sdk.client import RelayError

pytestmark = pytest.mark.e2e

CHAT = "/chat"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def sockets() -> AsyncIterator[list[RelaySocket]]:
    opened: list[RelaySocket] = []
    yield opened
    for sock in opened:
        await sock.close()


@pytest.fixture
def connect(sockets: list[RelaySocket]) -> Callable[[RelayClient], Any]:
    async def _connect(client: RelayClient) -> RelaySocket:
        sock = client.socket(CHAT)
        sockets.append(sock)
        await sock.connect()
        await sock.wait_for("connected")
        return sock

    return _connect


async def create_channel(client: RelayClient, members: list[str], visibility: str = "members", **extra: Any) -> str:
    body = {"name": extra.pop("name", "general"), "members": members, "visibility": visibility, **extra}
    channel = await client.post("/v2/channels", body, expect=201)
    assert channel["visibility"] == visibility
    return str(channel["channelId"])


async def send(sock: RelaySocket, channel_id: str, text: str, **extra: Any) -> dict[str, Any]:
    ack = await sock.call("send_message", {"channelId": channel_id, "text": text, **extra})
    assert ack["success"] is True, ack
    return ack


async def test_seed_flow_across_replicas(client_factory, mint, connect):
    alice_id, bob_id, carol_id = uid("alice"), uid("bob"), uid("carol")
    alice = client_factory(mint(alice_id, "member"), 0)
    bob = client_factory(mint(bob_id, "member"), 1)
    carol = client_factory(mint(carol_id, "member"), 0)
    channel_id = await create_channel(alice, [bob_id, carol_id])

    # connecting joins every channel of the user: no join_channel needed to receive
    a, b, c = await connect(alice), await connect(bob), await connect(carol)

    # the seed client still calls join_channel; the others hear about it
    ack = await b.call("join_channel", {"channelId": channel_id})
    assert ack == {"success": True, "channelId": channel_id}
    joined = await a.wait_for("user_joined_channel")
    assert joined["userId"] == bob_id and joined["channelId"] == channel_id and joined["username"] == bob_id
    await c.wait_for("user_joined_channel")

    sent = await send(
        a,
        channel_id,
        "hello @bob",
        mentions=[bob_id],
        links=["https://example.com/x"],
        attachments=["file-1"],
    )
    assert sent["seq"] == 1 and sent["messageId"]
    for sock in (a, b, c):
        event = await sock.wait_for("new_message")
        assert event["seq"] == 1 and event["channelId"] == channel_id
        assert event["message"]["id"] == sent["messageId"]
        assert event["message"]["content"] == {
            "text": "hello @bob",
            "attachments": ["file-1"],
            "mentions": [bob_id],
            "links": ["https://example.com/x"],
        }
        assert event["author"] == {"id": alice_id, "username": alice_id, "avatar": None}
    mention = await b.wait_for("mention_received")
    assert mention["messageId"] == sent["messageId"] and mention["text"] == "hello @bob"
    assert mention["author"]["id"] == alice_id and mention["channelId"] == channel_id

    # typing goes to the others on both replicas, not back to the typist
    assert (await a.call("typing_start", {"channelId": channel_id}))["success"] is True
    typing = await b.wait_for("user_typing")
    assert typing == {
        "userId": alice_id,
        "username": alice_id,
        "channelId": channel_id,
        "timestamp": typing["timestamp"],
        "isTyping": True,
    }
    await c.wait_for("user_typing")
    await a.call("typing_stop", {"channelId": channel_id})
    stopped = await b.wait_for("user_typing", lambda e: e["isTyping"] is False)
    assert stopped["userId"] == alice_id
    assert a.received("user_typing") == []

    # edit by the author: everyone sees it, and the history keeps the old text
    edited = await a.call("edit_message", {"messageId": sent["messageId"], "channelId": channel_id, "text": "hi @bob"})
    assert edited["success"] is True and edited["messageId"] == sent["messageId"]
    for sock in (a, b, c):
        event = await sock.wait_for("message_edited")
        assert event["text"] == "hi @bob" and event["seq"] == 1
        assert event["editedBy"]["id"] == alice_id
        assert [h["content"] for h in event["message"]["editHistory"]] == ["hello @bob"]

    # reactions
    ack = await b.call("add_reaction", {"messageId": sent["messageId"], "channelId": channel_id, "emoji": "👍"})
    assert ack["success"] is True
    added = await a.wait_for("reaction_added")
    assert added["emoji"] == "👍" and added["userId"] == bob_id and added["messageId"] == sent["messageId"]
    assert added["reactions"] == [{"emoji": "👍", "count": 1, "users": [bob_id]}]
    await b.call("remove_reaction", {"messageId": sent["messageId"], "channelId": channel_id, "emoji": "👍"})
    removed = await c.wait_for("reaction_removed")
    assert removed["reactions"] == []

    # a thread on the first message; replies go to the channel and the thread room, once each socket
    thread = await b.call("create_thread", {"channelId": channel_id, "messageId": sent["messageId"], "name": "t"})
    assert thread["success"] is True and thread["threadId"] == sent["messageId"]
    created = await c.wait_for("thread_created")
    assert created["threadId"] == sent["messageId"] and created["createdBy"]["id"] == bob_id
    reply = await send(c, channel_id, "in thread", threadId=thread["threadId"], parentMessageId=sent["messageId"])
    for sock in (a, b, c):
        event = await sock.wait_for("new_message", lambda e: e["seq"] == reply["seq"])
        assert event["message"]["threadId"] == thread["threadId"]
    await asyncio.sleep(0.5)
    for sock in (a, b, c):
        assert len([e for e in sock.received("new_message") if e["seq"] == reply["seq"]]) == 1

    # leave: the others hear it and the leaver gets no more messages
    assert (await c.call("leave_channel", {"channelId": channel_id}))["success"] is True
    left = await a.wait_for("user_left_channel")
    assert left["userId"] == carol_id
    third = await send(a, channel_id, "after carol left")
    await b.wait_for("new_message", lambda e: e["seq"] == third["seq"])
    await asyncio.sleep(0.5)
    assert all(e["seq"] != third["seq"] for e in c.received("new_message"))


async def test_private_channel_refuses_non_members_public_channel_admits(client_factory, mint, connect):
    owner_id, outsider_id = uid("owner"), uid("outsider")
    owner = client_factory(mint(owner_id, "member"), 0)
    outsider = client_factory(mint(outsider_id, "member"), 1)
    private_id = await create_channel(owner, [], "members")
    public_id = await create_channel(owner, [], "public")
    o = await connect(owner)
    x = await connect(outsider)

    ack = await x.call("join_channel", {"channelId": private_id})
    assert ack["success"] is False and ack["error"]["code"] == "PERMISSION_DENIED"
    assert (await x.wait_for("error"))["code"] == "PERMISSION_DENIED"
    ack = await x.call("send_message", {"channelId": private_id, "text": "let me in"})
    assert ack["success"] is False and ack["error"]["code"] == "PERMISSION_DENIED"
    ack = await x.call("sync_request", {"channelId": private_id, "lastSeq": 0})
    assert ack["success"] is False and ack["error"]["code"] == "PERMISSION_DENIED"
    ack = await x.call("typing_start", {"channelId": private_id})
    assert ack["success"] is False and ack["error"]["code"] == "PERMISSION_DENIED"
    ack = await x.call("join_channel", {"channelId": "no-such-channel"})
    assert ack["success"] is False and ack["error"]["code"] == "NOT_FOUND"
    await send(o, private_id, "secret")
    await o.wait_for("new_message")
    with pytest.raises(RelayError) as denied:
        await outsider.get(f"/v2/channels/{private_id}/messages")
    assert denied.value.status == 403

    # a public channel may be joined by anyone of the tenant, who then gets its messages
    ack = await x.call("join_channel", {"channelId": public_id})
    assert ack["success"] is True
    await send(o, public_id, "welcome")
    event = await x.wait_for("new_message", lambda e: e["channelId"] == public_id)
    assert event["message"]["text"] == "welcome"
    assert all(e["channelId"] != private_id for e in x.received("new_message"))
    mine = await outsider.get("/v2/channels")
    assert [ch["channelId"] for ch in mine["channels"]] == [public_id]


async def test_edit_by_non_author_refused_and_delete_removes_for_everyone(client_factory, mint, connect):
    author_id, other_id, mod_id = uid("author"), uid("other"), uid("mod")
    author = client_factory(mint(author_id, "member"), 0)
    other = client_factory(mint(other_id, "member"), 1)
    moderator = client_factory(mint(mod_id, "member"), 1)
    channel_id = await create_channel(author, [other_id], moderators=[mod_id])
    a, o, md = await connect(author), await connect(other), await connect(moderator)
    first = await send(a, channel_id, "first")
    second = await send(a, channel_id, "second")
    await o.wait_for("new_message", count=2)

    ack = await o.call("edit_message", {"messageId": first["messageId"], "channelId": channel_id, "text": "hacked"})
    assert ack["success"] is False and ack["error"]["code"] == "PERMISSION_DENIED"
    ack = await o.call("delete_message", {"messageId": first["messageId"], "channelId": channel_id})
    assert ack["success"] is False and ack["error"]["code"] == "PERMISSION_DENIED"
    page = await other.get(f"/v2/channels/{channel_id}/messages")
    assert [x["text"] for x in page["messages"]] == ["first", "second"]
    assert all(not x["edited"] for x in page["messages"])

    # the author deletes one, a moderator the other
    ack = await a.call("delete_message", {"messageId": first["messageId"], "channelId": channel_id})
    assert ack["success"] is True
    ack = await md.call("delete_message", {"messageId": second["messageId"], "channelId": channel_id})
    assert ack["success"] is True
    for sock in (a, o, md):
        got = await sock.wait_for("message_deleted", count=2)
        assert {d["messageId"] for d in got} == {first["messageId"], second["messageId"]}
    deleter = {d["messageId"]: d["deletedBy"]["id"] for d in await o.wait_for("message_deleted", count=2)}
    assert deleter == {first["messageId"]: author_id, second["messageId"]: mod_id}

    for reader in (other, author):
        assert (await reader.get(f"/v2/channels/{channel_id}/messages"))["messages"] == []
        assert (await reader.history(channel_id))["messages"] == []
    sync = await o.call("sync_request", {"channelId": channel_id, "lastSeq": 0})
    assert sync["messages"] == [] and {d["seq"] for d in sync["deleted"]} == {1, 2}
    # a deleted message cannot be edited, reacted to or deleted again
    ack = await a.call("edit_message", {"messageId": first["messageId"], "channelId": channel_id, "text": "back"})
    assert ack["success"] is False and ack["error"]["code"] == "NOT_FOUND"
    ack = await o.call("add_reaction", {"messageId": first["messageId"], "channelId": channel_id, "emoji": "x"})
    assert ack["success"] is False and ack["error"]["code"] == "NOT_FOUND"


async def test_mention_reaches_every_socket_of_the_user_on_both_replicas(client_factory, mint, connect):
    author_id, target_id, bystander_id = uid("author"), uid("target"), uid("bystander")
    author = client_factory(mint(author_id, "member"), 0)
    channel_id = await create_channel(author, [target_id, bystander_id])
    a = await connect(author)
    targets = [await connect(client_factory(mint(target_id, "member"), replica)) for replica in (0, 1, 1)]
    bystander = await connect(client_factory(mint(bystander_id, "member"), 0))
    # a socket of the target on `/` is not a /chat client and gets nothing of this dialect
    plain = client_factory(mint(target_id, "member"), 0).socket()
    await plain.connect()
    try:
        sent = await send(a, channel_id, "ping", mentions=[target_id, "not-a-member"])
        for sock in targets:
            mention = await sock.wait_for("mention_received")
            assert mention["messageId"] == sent["messageId"] and mention["seq"] == sent["seq"]
        await bystander.wait_for("new_message")
        await asyncio.sleep(0.5)
        for sock in targets:
            assert len(sock.received("mention_received")) == 1
        assert bystander.received("mention_received") == [] and a.received("mention_received") == []
        assert plain.received("mention_received") == [] and plain.received("new_message") == []
    finally:
        await plain.close()


async def test_sync_after_reconnect_fills_the_gap_exactly(client_factory, mint, connect):
    writer_id, reader_id = uid("writer"), uid("reader")
    writer = client_factory(mint(writer_id, "member"), 0)
    reader = client_factory(mint(reader_id, "member"), 1)
    channel_id = await create_channel(writer, [reader_id])
    w = await connect(writer)
    r = await connect(reader)
    for i in range(3):
        await send(w, channel_id, f"before {i}")
    seen = await r.wait_for("new_message", count=3)
    last_seq = seen[-1]["seq"]
    await r.close()

    missed = [await send(w, channel_id, f"missed {i}") for i in range(4)]
    await w.call("delete_message", {"messageId": missed[1]["messageId"], "channelId": channel_id})

    r2 = await connect(client_factory(reader.token, 0))
    ack = await r2.call("sync_request", {"channelId": channel_id, "lastSeq": last_seq})
    response = await r2.wait_for("sync_response")
    assert ack["success"] is True
    assert [x["seq"] for x in response["messages"]] == [4, 6, 7]
    assert [x["text"] for x in response["messages"]] == ["missed 0", "missed 2", "missed 3"]
    assert response["deleted"] == [{"messageId": missed[1]["messageId"], "seq": 5}]
    assert response["lastSeq"] == 7 and response["hasMore"] is False
    # nothing after the tail, and a timestamp works for a client that kept no seq
    ack = await r2.call("sync_request", {"channelId": channel_id, "lastSeq": 7})
    assert ack["messages"] == [] and ack["lastSeq"] == 7
    ack = await r2.call("sync_request", {"channelId": channel_id, "lastTimestamp": "2000-01-01T00:00:00Z"})
    assert [x["seq"] for x in ack["messages"]] == [1, 2, 3, 4, 6, 7]
    # and the reconnected socket is back in the channel without asking
    after = await send(w, channel_id, "live again")
    event = await r2.wait_for("new_message")
    assert event["seq"] == after["seq"] == 8


async def test_sync_also_brings_what_changed_before_the_last_seq(client_factory, mint, connect):
    """With `lastSeq` and the `timestamp` of its previous sync_response, a reconnecting client also
    learns of edits, reactions and deletes of messages it already had."""
    writer_id, reader_id = uid("writer"), uid("reader")
    writer = client_factory(mint(writer_id, "member"), 0)
    reader = client_factory(mint(reader_id, "member"), 1)
    channel_id = await create_channel(writer, [reader_id])
    w = await connect(writer)
    r = await connect(reader)
    old = [await send(w, channel_id, f"old {i}") for i in range(3)]
    await r.wait_for("new_message", count=3)
    synced = await r.call("sync_request", {"channelId": channel_id, "lastSeq": 3})
    assert synced["messages"] == [] and synced["changed"] == []
    await r.close()

    ids = [m["messageId"] for m in old]
    assert (await w.call("edit_message", {"channelId": channel_id, "messageId": ids[0], "text": "old 0, fixed"}))[
        "success"
    ]
    assert (await w.call("add_reaction", {"channelId": channel_id, "messageId": ids[1], "emoji": "👍"}))["success"]
    assert (await w.call("delete_message", {"channelId": channel_id, "messageId": ids[2]}))["success"]
    await send(w, channel_id, "new 3")

    r2 = await connect(client_factory(reader.token, 0))
    ack = await r2.call("sync_request", {"channelId": channel_id, "lastSeq": 3, "lastTimestamp": synced["timestamp"]})
    assert ack["success"] is True
    assert [x["text"] for x in ack["messages"]] == ["new 3"]
    changed = {x["seq"]: x for x in ack["changed"]}
    assert sorted(changed) == [1, 2]
    assert changed[1]["text"] == "old 0, fixed" and changed[1]["edited"] is True
    assert changed[2]["reactions"] == [{"emoji": "👍", "count": 1, "users": [writer_id]}]
    assert ack["deleted"] == [{"messageId": ids[2], "seq": 3}]
    # from this sync on, nothing is reported twice
    again = await r2.call("sync_request", {"channelId": channel_id, "lastSeq": 4, "lastTimestamp": ack["timestamp"]})
    assert again["messages"] == [] and again["changed"] == [] and again["deleted"] == []


async def test_same_channel_id_in_two_tenants_never_mixes(client_factory, mint, connect):
    channel_id = uid("shared")
    acme_id, globex_id = uid("acme-user"), uid("globex-user")
    acme = client_factory(mint(acme_id, "member", tenant="acme"), 0)
    globex = client_factory(mint(globex_id, "member", tenant="globex"), 1)
    assert await create_channel(acme, [], "public", channelId=channel_id) == channel_id
    assert await create_channel(globex, [], "public", channelId=channel_id) == channel_id
    with pytest.raises(RelayError) as taken:
        await create_channel(acme, [], channelId=channel_id)
    assert taken.value.status == 409
    a = await connect(acme)
    g = await connect(globex)
    a_sent = await send(a, channel_id, "acme only")
    g_sent = await send(g, channel_id, "globex only")
    assert a_sent["seq"] == g_sent["seq"] == 1
    assert (await a.wait_for("new_message"))["message"]["text"] == "acme only"
    assert (await g.wait_for("new_message"))["message"]["text"] == "globex only"
    await a.call("typing_start", {"channelId": channel_id})
    await asyncio.sleep(0.5)
    assert len(a.received("new_message")) == 1 and len(g.received("new_message")) == 1
    assert g.received("user_typing") == []
    # another tenant's message cannot be touched even with its id
    ack = await g.call("delete_message", {"messageId": a_sent["messageId"], "channelId": channel_id})
    assert ack["success"] is False and ack["error"]["code"] == "NOT_FOUND"
    page = await acme.get(f"/v2/channels/{channel_id}/messages")
    assert [x["text"] for x in page["messages"]] == ["acme only"]


async def test_typing_expires_without_refresh(client_factory, mint, connect):
    typist_id, watcher_id = uid("typist"), uid("watcher")
    typist = client_factory(mint(typist_id, "member"), 0)
    channel_id = await create_channel(typist, [watcher_id])
    t = await connect(typist)
    w = await connect(client_factory(mint(watcher_id, "member"), 1))
    await t.call("typing_start", {"channelId": channel_id})
    await w.wait_for("user_typing", lambda e: e["isTyping"])
    stopped = await w.wait_for("user_typing", lambda e: not e["isTyping"], timeout=8)
    assert stopped["userId"] == typist_id


async def test_rest_members_and_validation(client_factory, mint, connect):
    owner_id, member_id, newcomer_id = uid("owner"), uid("member"), uid("new")
    owner = client_factory(mint(owner_id, "member"), 0)
    member = client_factory(mint(member_id, "member"), 1)
    channel_id = await create_channel(owner, [member_id])
    # the newcomer is online on both replicas before being added
    waiting = [await connect(client_factory(mint(newcomer_id, "member"), replica)) for replica in (0, 1)]
    o = await connect(owner)
    with pytest.raises(RelayError) as denied:
        await member.post(f"/v2/channels/{channel_id}/members", {"members": [newcomer_id]})
    assert denied.value.status == 403
    added = await owner.post(f"/api/v1/channels/{channel_id}/members", {"members": [newcomer_id, member_id]})
    assert added["added"] == [newcomer_id]
    assert set(added["members"]) == {owner_id, member_id, newcomer_id}
    newcomer = client_factory(mint(newcomer_id, "member"), 0)
    assert (await newcomer.get(f"/v2/channels/{channel_id}"))["name"] == "general"
    # their open sockets were moved into the channel: the next message reaches them without a join
    sent = await send(o, channel_id, "welcome aboard")
    for sock in waiting:
        assert (await sock.wait_for("new_message"))["seq"] == sent["seq"]
    for body in ({"name": ""}, {"name": "x", "visibility": "secret"}, {"name": "x", "members": "bob"}, {"x": 1}):
        with pytest.raises(RelayError) as bad:
            await owner.post("/v2/channels", body)
        assert bad.value.status == 400 and bad.value.code == "VALIDATION_ERROR"


async def test_message_limit_on_chat_is_shared_with_the_other_replica(client_factory, mint, connect):
    """30 messages per 10 s per user, whichever replica and namespace they go through."""
    user_id, reader_id = uid("flood"), uid("reader")
    flooder = client_factory(mint(user_id, "member"), 0)
    channel_id = await create_channel(flooder, [reader_id])
    on_a = await connect(flooder)
    on_b = await connect(client_factory(flooder.token, 1))
    reader = await connect(client_factory(mint(reader_id, "member"), 1))
    for i in range(30):
        await send((on_a, on_b)[i % 2], channel_id, f"m{i}")
    refused = await on_b.call("send_message", {"channelId": channel_id, "text": "one too many"})
    assert refused["success"] is False and refused["error"]["code"] == "RATE_LIMITED"
    assert 0 < refused["error"]["retryAfterMs"] <= 10_000
    # the refused message was never stored: the reader's history ends at the 30th
    history = await client_factory(mint(reader_id, "member"), 0).get(f"/v2/channels/{channel_id}/messages")
    texts = [m.get("text", m.get("content")) for m in history["messages"]]
    assert "one too many" not in texts and len(texts) == 30
    assert on_a.connected and on_b.connected and reader.connected
