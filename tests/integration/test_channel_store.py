"""Channels and message changes in the message service, on a real MongoDB-wire server."""

from __future__ import annotations

import uuid

import pytest
from relay_contracts import Envelope, RelayError
from relay_contracts import messages as m
from relay_contracts.envelope import Actor
from relay_message import changes, channels, handlers
from relay_message.adapters.repo import ConversationRepo, MessageRepo
from relay_message.handlers import Deps


def command(type_: str, user: str, tenant: str = "acme", roles: tuple[str, ...] = ("member",), **data) -> Envelope:
    return Envelope(type=type_, tenant=tenant, correlationId="c", actor=Actor(userId=user, roles=roles), data=data)


@pytest.fixture
async def setup(db):
    published: list[tuple[str, Envelope]] = []

    async def publish(key: str, event: Envelope) -> None:
        published.append((key, event))

    deps = Deps(ConversationRepo(db), MessageRepo(db), publish)
    await deps.conversations.ensure_indexes()
    await deps.messages.ensure_indexes()
    return deps, published


async def make_channel(deps: Deps, cid: str = "general", visibility: str = "members", **extra) -> None:
    data = {"conversationId": cid, "name": cid, "members": ["bob"], "visibility": visibility, **extra}
    await channels.create_channel(command(m.CREATE_CHANNEL, "alice", **data), deps)


async def send(deps: Deps, user: str, text: str, cid: str = "general", **extra) -> dict:
    data = {"conversationId": cid, "content": text, "clientMessageId": uuid.uuid4().hex, **extra}
    return await handlers.send_message(command(m.SEND_MESSAGE, user, **data), deps)


def of_type(published, event_type: str) -> list[tuple[str, Envelope]]:
    return [(k, e) for k, e in published if e.type == event_type]


async def test_edit_keeps_history_and_only_the_author_edits(setup):
    deps, published = setup
    await make_channel(deps)
    sent = await send(deps, "alice", "v1")
    with pytest.raises(RelayError) as denied:
        await changes.edit_message(
            command(m.EDIT_MESSAGE, "bob", conversationId="general", messageId=sent["messageId"], content="x"), deps
        )
    assert denied.value.code == "PERMISSION_DENIED"
    for text in ("v2", "v3"):
        edit = {"conversationId": "general", "messageId": sent["messageId"], "content": text}
        edited = await changes.edit_message(command(m.EDIT_MESSAGE, "alice", **edit), deps)
    assert edited["content"] == "v3" and edited["edited"] is True
    assert [h["content"] for h in edited["editHistory"]] == ["v1", "v2"]
    assert len(of_type(published, m.MESSAGE_UPDATED)) == 2
    page = await handlers.get_history(command(m.GET_HISTORY, "bob", conversationId="general"), deps)
    assert [x["content"] for x in page["messages"]] == ["v3"]


async def test_reactions_are_idempotent_and_announced_once(setup):
    deps, published = setup
    await make_channel(deps)
    sent = await send(deps, "alice", "hi")
    react = {"conversationId": "general", "messageId": sent["messageId"], "emoji": "👍"}
    first = await changes.react(command(m.REACT_MESSAGE, "bob", **react), deps)
    again = await changes.react(command(m.REACT_MESSAGE, "bob", **react), deps)
    other = await changes.react(command(m.REACT_MESSAGE, "alice", **react), deps)
    assert first["changed"] is True and again["changed"] is False
    assert other["reactions"] == [{"emoji": "👍", "count": 2, "users": ["bob", "alice"]}]
    removed = await changes.react(command(m.REACT_MESSAGE, "bob", **react, action="remove"), deps)
    assert removed["reactions"] == [{"emoji": "👍", "count": 1, "users": ["alice"]}]
    assert [e.data["action"] for _, e in of_type(published, m.REACTION_CHANGED)] == ["add", "add", "remove"]


async def test_delete_by_moderator_tombstones_and_sync_reports_it(setup):
    deps, published = setup
    await make_channel(deps, moderators=["mod"])
    kept = await send(deps, "bob", "kept")
    gone = await send(deps, "bob", "gone", mentions=["alice"])
    ref = {"conversationId": "general", "messageId": gone["messageId"]}
    with pytest.raises(RelayError) as denied:
        await changes.delete_message(command(m.DELETE_MESSAGE, "carol", **ref), deps)
    assert denied.value.code == "PERMISSION_DENIED"  # carol is not a member
    await changes.delete_message(command(m.DELETE_MESSAGE, "mod", **ref), deps)
    with pytest.raises(RelayError) as twice:
        await changes.delete_message(command(m.DELETE_MESSAGE, "mod", **ref), deps)
    assert twice.value.code == "NOT_FOUND"
    stored = await deps.messages.get("acme", "general", gone["messageId"])
    assert stored is not None and stored["content"] == "" and stored["mentions"] == [] and stored["deleted"] is True
    sync = await changes.sync_messages(command(m.SYNC_MESSAGES, "bob", conversationId="general", afterSeq=0), deps)
    assert [x["messageId"] for x in sync["messages"]] == [kept["messageId"]]
    assert sync["deleted"] == [{"messageId": gone["messageId"], "seq": 2}] and sync["lastSeq"] == 2
    assert len(of_type(published, m.MESSAGE_DELETED)) == 1


async def test_threads_and_mentions(setup):
    deps, published = setup
    await make_channel(deps)
    root = await send(deps, "alice", "root")
    ref = {"conversationId": "general", "messageId": root["messageId"], "name": "topic"}
    made = await changes.create_thread(command(m.CREATE_THREAD, "bob", **ref), deps)
    again = await changes.create_thread(command(m.CREATE_THREAD, "alice", **ref), deps)
    assert made["created"] is True and again["created"] is False and again["createdBy"] == "bob"
    reply = await send(deps, "bob", "reply @alice", threadId=root["messageId"], mentions=["alice", "bob", "stranger"])
    assert reply["threadId"] == root["messageId"]
    mentions = of_type(published, m.MESSAGE_MENTIONED)
    assert [(k.split(".")[2], e.data["mentionedUserId"]) for k, e in mentions] == [("alice", "alice")]
    with pytest.raises(RelayError) as nested:
        await send(deps, "bob", "nested", threadId=reply["messageId"])
    assert nested.value.field == "threadId"
    with pytest.raises(RelayError) as missing:
        await send(deps, "bob", "orphan", parentMessageId="nope")
    assert missing.value.code == "NOT_FOUND"


async def test_membership_public_private_and_tenants(setup):
    deps, published = setup
    await make_channel(deps, "private")
    await make_channel(deps, "open", visibility="public")
    with pytest.raises(RelayError) as denied:
        await channels.join_channel(command(m.JOIN_CHANNEL, "carol", conversationId="private"), deps)
    assert denied.value.code == "PERMISSION_DENIED"
    joined = await channels.join_channel(command(m.JOIN_CHANNEL, "carol", conversationId="open"), deps)
    assert "carol" in [p["userId"] for p in joined["participants"]]
    mine = await channels.list_channels(command(m.LIST_CHANNELS, "carol"), deps)
    assert [c["conversationId"] for c in mine["channels"]] == ["open"]
    with pytest.raises(RelayError) as not_mod:
        await channels.add_members(command(m.ADD_MEMBERS, "bob", conversationId="private", members=["dan"]), deps)
    assert not_mod.value.code == "PERMISSION_DENIED"
    added = await channels.add_members(
        command(m.ADD_MEMBERS, "alice", conversationId="private", members=["dan", "bob"]), deps
    )
    assert added["added"] == ["dan"]
    # to the channel, and to each new member (whose open sockets then enter the room)
    announced = [(k.split(".")[1:3], e.data["userIds"]) for k, e in of_type(published, m.MEMBERS_ADDED)]
    assert announced == [
        (["conv", "open"], ["carol"]),
        (["user", "carol"], ["carol"]),
        (["conv", "private"], ["dan"]),
        (["user", "dan"], ["dan"]),
    ]
    # the same id in another tenant is another channel
    with pytest.raises(RelayError) as elsewhere:
        await channels.join_channel(command(m.JOIN_CHANNEL, "alice", tenant="globex", conversationId="open"), deps)
    assert elsewhere.value.code == "NOT_FOUND"
