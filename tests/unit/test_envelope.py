"""The one envelope every command and event travels in."""

from __future__ import annotations

import pydantic
import pytest
from relay_contracts import Envelope, ErrorCode, RelayError, new_id
from relay_contracts.envelope import Actor
from relay_contracts.routing import event_key, interest_pattern


def test_round_trip_and_required_fields():
    env = Envelope(type="message.send", tenant="acme", correlationId="c1", actor=Actor(userId="u1"), data={"a": 1})
    again = Envelope.from_bytes(env.to_bytes())
    assert again == env
    assert env.occurredAt.endswith("Z") and env.version == 1
    with pytest.raises(pydantic.ValidationError):
        Envelope.model_validate({"type": "x", "tenant": "t"})  # no correlation id
    with pytest.raises(pydantic.ValidationError):
        Envelope.model_validate({"type": "x", "tenant": "t", "correlationId": "c", "surprise": 1})


def test_ids_are_unique_and_sort_by_creation():
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert ids[0] < ids[-1]


def test_caused_event_keeps_tenant_actor_and_correlation():
    cmd = Envelope(type="message.send", tenant="acme", correlationId="c1", actor=Actor(userId="u1"))
    event = cmd.caused("message.created", {"x": 1})
    assert (event.tenant, event.correlationId, event.causationId, event.actor) == ("acme", "c1", cmd.id, cmd.actor)
    assert event.id != cmd.id


def test_routing_words_are_escaped_so_ids_cannot_widen_a_binding():
    assert event_key("acme", "conv", "a.b", "message.created") == "acme.conv.a%2Eb.message.created"
    assert interest_pattern("t#1", "conv", "*") == "t%231.conv.%2A.#"


def test_relay_error_round_trips_with_http_status():
    err = RelayError(ErrorCode.RATE_LIMITED, "slow down", retryAfterMs=1200)
    again = RelayError.from_dict(err.to_dict())
    assert (again.code, again.message, again.details, again.http_status) == (
        ErrorCode.RATE_LIMITED,
        "slow down",
        {"retryAfterMs": 1200},
        429,
    )
