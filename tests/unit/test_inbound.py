"""The edge's checks of client values and Socket.IO packets, without servers (tests/security proves them live)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from relay_contracts import RelayError
from relay_contracts import messages as m
from relay_gateway.inbound import check_inbound
from relay_gateway.packets import GuardedPacket, MalformedPacket, namespace_of


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"afterSeq": 10**30}, "afterSeq"),
        ({"a": [1, -(2**53)]}, "a.1"),
        ({"text": "nul\x00"}, "text"),
        ({"text": "\ud800"}, "text"),
        ({"\ud800": 1}, "\ud800"),
        ({"n": float("inf")}, "n"),
    ],
)
def test_unstorable_values_are_refused_naming_the_field(value, field):
    with pytest.raises(RelayError) as refused:
        check_inbound(value)
    assert refused.value.code.value == "VALIDATION_ERROR" and refused.value.field == field


def test_depth_is_bounded_without_recursion():
    deep: list = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(RelayError, match="nested deeper"):
        check_inbound(deep)
    check_inbound({"a": [[[{"b": "ok \U0001f600", "n": 2**53 - 1, "f": 1.5, "t": True, "z": None}]]]})


@pytest.mark.parametrize(
    "raw",
    [
        '55-["e",{"_placeholder":true,"num":0}]',  # more attachments than allowed
        '51-["e",{"_placeholder":true,"num":1}]',  # a placeholder naming no attachment
        '51-["e",{"_placeholder":true,"num":true}]',
        '50-["e",{"_placeholder":true,"num":0}]',
    ],
)
def test_binary_packets_declare_only_what_they_carry(raw):
    with pytest.raises(MalformedPacket):
        GuardedPacket(encoded_packet=raw)


def test_a_proper_binary_packet_decodes():
    packet = GuardedPacket(encoded_packet='52-["e",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]')
    assert packet.attachment_count == 2
    assert not packet.add_attachment(b"a") and packet.add_attachment(b"b")
    assert packet.data == ["e", b"b", b"a"]


@pytest.mark.parametrize(
    ("raw", "namespace"),
    [("2/chat,[]", "/chat"), ("51-/chat,[", "/chat"), ("2[]", "/"), ("2/x?a=1,[]", "/x"), (b"\x00", "/")],
)
def test_the_namespace_of_an_undecodable_packet(raw, namespace):
    assert namespace_of(raw) == namespace


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (m.GetHistory, {"conversationId": "c", "afterSeq": 10**30}),
        (m.GetHistory, {"conversationId": "c", "before": 2**63}),
        (m.SyncMessages, {"conversationId": "c", "afterSeq": 2**53}),
        (m.SyncMessages, {"conversationId": "c", "afterSeq": True}),
        (m.ReactToMessage, {"conversationId": "c", "messageId": "m", "emoji": "a b"}),
        (m.ReactToMessage, {"conversationId": "c", "messageId": "m", "emoji": "\x00"}),
    ],
)
def test_services_refuse_what_the_edge_refuses(model, data):
    """A command that reached a service without the gateway's checks still cannot crash its handler."""
    with pytest.raises(ValidationError):
        model.model_validate(data)
