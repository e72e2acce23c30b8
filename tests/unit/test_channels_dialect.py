"""seed-000 rendering and channel moderation rules, without servers."""

from __future__ import annotations

from typing import Any

from relay_contracts import Envelope
from relay_contracts import messages as m
from relay_contracts.envelope import Actor
from relay_gateway.dialects import render
from relay_gateway.dialects.channels import TABLE
from relay_message import domain


def event(type_: str, **data: Any) -> Envelope:
    actor = Actor(userId="alice", roles=("member",), username="Alice")
    return Envelope(type=type_, tenant="acme", correlationId="c", actor=actor, data=data)


def message(**extra: Any) -> dict[str, Any]:
    return {
        "messageId": "m2",
        "conversationId": "c1",
        "seq": 2,
        "senderId": "alice",
        "senderName": "Alice",
        "type": "text",
        "content": "hello",
        "isInternal": False,
        "createdAt": "2026-01-01T00:00:00.000Z",
        "mentions": ["bob"],
        **extra,
    }


def test_new_message_has_the_seed_shape_and_seq():
    [d] = render(TABLE, event(m.MESSAGE_CREATED, **message()))
    assert (d.namespace, d.room, d.event) == ("/chat", "channel:c1", "new_message")
    assert d.payload["author"] == {"id": "alice", "username": "Alice", "avatar": None}
    assert d.payload["message"]["id"] == "m2" and d.payload["message"]["content"]["text"] == "hello"
    assert d.payload["message"]["channelId"] == "c1" and d.payload["seq"] == 2


def test_thread_reply_goes_to_channel_and_thread_in_one_delivery():
    # one emit to both rooms: a socket in both gets it once
    [d] = render(TABLE, event(m.MESSAGE_CREATED, **message(threadId="m1")))
    assert d.room == ("channel:c1", "thread:m1")


def test_internal_notes_never_render_in_channels():
    assert render(TABLE, event(m.MESSAGE_CREATED, **message(isInternal=True))) == []
    assert render(TABLE, event(m.MESSAGE_UPDATED, **message(isInternal=True))) == []


def test_mention_goes_to_the_mentioned_users_room_on_chat():
    [d] = render(TABLE, event(m.MESSAGE_MENTIONED, **message(mentionedUserId="bob")))
    assert (d.namespace, d.room, d.event) == ("/chat", "user:bob", "mention_received")
    assert d.payload["author"]["id"] == "alice" and d.payload["text"] == "hello" and d.payload["seq"] == 2


def test_reaction_event_name_follows_the_action():
    data = {"conversationId": "c1", "messageId": "m2", "seq": 2, "userId": "alice", "emoji": "x", "reactions": []}
    [added] = render(TABLE, event(m.REACTION_CHANGED, **data, action="add"))
    [removed] = render(TABLE, event(m.REACTION_CHANGED, **data, action="remove"))
    assert (added.event, removed.event) == ("reaction_added", "reaction_removed")
    assert added.payload["username"] == "Alice"


def test_moderators_by_role_participant_role_or_permission():
    def conv(**participant: Any) -> dict[str, Any]:
        return {"participants": [{"userId": "u", **participant}]}

    msg = {"senderId": "author"}
    assert domain.can_delete(conv(), {"senderId": "u"}, "u", ())
    assert not domain.can_delete(conv(role="member", permissions={"canModerate": False}), msg, "u", ())
    assert domain.can_delete(conv(role="moderador"), msg, "u", ())
    assert domain.can_delete(conv(role="member", permissions={"canModerate": True}), msg, "u", ())
    assert domain.can_delete(conv(role="member", permissions={"canDelete": True}), msg, "u", ())
    assert domain.can_delete(conv(), msg, "someone", ("Moderator",))
    assert not domain.can_delete(conv(), msg, "someone", ("member",))
