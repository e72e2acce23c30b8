"""The one rule of who sees whose presence, and how a socket's dialect becomes known."""

from __future__ import annotations

import pytest
from relay_gateway.context import Connection
from relay_gateway.presence_audience import people_of, sees_tenant, shown_to_restricted
from relay_gateway.speaks import hinted, presence_dialect


@pytest.mark.parametrize(
    ("roles", "visible", "sees"),
    [
        (["agent"], (), True),
        (["cliente"], (), True),
        (["WAITER"], (), True),
        ([], (), True),
        (["visitor"], (), False),
        (["Visitor"], (), False),
        (["visitor", "agent"], (), True),
        (["agent"], ("admin", "agent"), True),
        (["cliente"], ("admin", "Agent"), False),
        (["visitor"], ("admin",), False),
    ],
)
def test_every_role_but_visitor_sees_the_tenant_unless_the_setting_narrows_it(roles, visible, sees):
    assert sees_tenant(roles, visible) is sees


def test_restricted_viewers_see_the_people_of_their_conversations_but_never_a_visitor():
    conversations = [
        {"conversationId": "c1", "participants": [{"userId": "me"}, {"userId": "agent-1"}]},
        {"conversationId": "c2", "participants": [{"userId": "me"}, {"userId": "agent-2"}, {"userId": "cli"}]},
        {"conversationId": "c3", "participants": [{"userId": "me"}, {"userId": "v2", "role": "Visitor"}]},
    ]
    assert people_of(conversations, "me") == {"agent-1", "agent-2", "cli"}
    assert shown_to_restricted({"userId": "agent-1", "roles": ["agent"]})
    assert not shown_to_restricted({"userId": "v2", "roles": ["visitor"]})
    assert shown_to_restricted({"userId": "x"})


@pytest.mark.parametrize(
    ("auth", "query", "dialect"),
    [
        ({"token": "t", "dialect": "mensajeria"}, {}, "mensajeria"),
        (None, {"dialect": "users"}, "users"),
        ({"dialect": "klingon"}, {}, None),
        ({"dialect": 3}, {"dialect": "support"}, "support"),
        (None, {}, None),
    ],
)
def test_a_handshake_hint_names_the_dialect(auth, query, dialect):
    assert hinted(auth, query) == dialect


@pytest.mark.parametrize(
    ("dialect", "presence"),
    [(None, "users"), ("users", "users"), ("mensajeria", "mensajeria"), ("support", None), ("orders", None)],
)
def test_each_dialect_gets_presence_in_its_own_events_or_none(dialect, presence):
    assert presence_dialect(Connection("sid", "/", None, dialect=dialect)) == presence
