"""Malformed Socket.IO packets get an `error` event, one throttled log line, and never wedge the socket
(issue 13, finding 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.raw import RawSocket

pytestmark = pytest.mark.e2e

MALFORMED = [
    "42[]",
    "42[123,{}]",
    "42[null]",
    '42["chat:join",{"chatId":',
    "42{}",
    '42"text"',
    "4299999999999999999999999999",
    '41-["chat:join",{}]',  # a binary count that is not a number
    "47",  # no such Socket.IO packet type
    "44",  # a CONNECT_ERROR from a client
    '43["orphan ack"]',
]


def _gateway_log(stack, index: int = 0) -> str:
    return (Path(stack.config.log_dir) / f"gateway-{index}.log").read_text(errors="replace")


async def _assert_alive(sock: RawSocket) -> None:
    if sock.namespace == "/chat":  # health-check lives on `/`; leaving a channel one is not in always succeeds
        ack = await sock.call("leave_channel", {"channelId": "none"})
        assert ack["success"] is True, ack
        return
    ack = await sock.call("health-check")
    assert ack["success"] is True and ack["status"] == "ok", ack


async def test_malformed_packets_get_an_error_event_and_leave_the_socket_usable(gateways, mint, stack):
    log_before = _gateway_log(stack)
    async with RawSocket(gateways[0], auth={"token": mint("v-raw-1", "visitor")}) as sock:
        for frame in MALFORMED:
            start = len(sock.received)
            await sock.send(frame)
            error = await sock.wait_event("error", start=start, timeout=5)
            assert error["code"] == "VALIDATION_ERROR", (frame, error)
            assert error["message"], frame
            await _assert_alive(sock)
        assert sock.open
    # no traceback per packet: a malformed packet is the client's fault, logged as one short line
    added = _gateway_log(stack)[len(log_before) :]
    assert "Traceback" not in added
    assert added.count("socket.malformed_packet") <= len(MALFORMED)


async def test_a_binary_placeholder_without_its_attachment_does_not_wedge_the_socket(gateways, mint):
    async with RawSocket(gateways[0], auth={"token": mint("v-raw-2", "visitor")}) as sock:
        start = len(sock.received)
        await sock.send('451-["chat:join",{"_placeholder":true,"num":7}]')
        error = await sock.wait_event("error", start=start, timeout=5)
        assert error["code"] == "VALIDATION_ERROR", error
        await _assert_alive(sock)
        # a declared attachment that never comes: the next text packet is a packet, not an attachment
        start = len(sock.received)
        await sock.send('451-["chat:join",{"_placeholder":true,"num":0}]')
        await _assert_alive(sock)
        await _assert_alive(sock)
        assert sock.events("error", start), "the abandoned binary packet is reported"


async def test_binary_attachments_per_packet_are_bounded(gateways, mint):
    async with RawSocket(gateways[0], auth={"token": mint("v-raw-3", "visitor")}) as sock:
        start = len(sock.received)
        await sock.send('45999-["chat:join",{"_placeholder":true,"num":0}]')
        error = await sock.wait_event("error", start=start, timeout=5)
        assert error["code"] == "VALIDATION_ERROR", error
        for _ in range(3):
            await sock.send(b"\x00" * 16)  # stray attachments nobody asked for
        await _assert_alive(sock)
        # an allowed binary event still works end to end
        start = len(sock.received)
        await sock.send('451-["test",{"message":"bin","blob":{"_placeholder":true,"num":0}}]')
        await sock.send(b"\x01\x02")
        echoed = await sock.wait_event("test", start=start, timeout=5)
        assert echoed["message"] == "bin" and echoed["echo"] is True


async def test_malformed_packets_on_another_namespace_are_answered_there(gateways, mint):
    async with RawSocket(gateways[1], namespace="/chat", auth={"token": mint("u-raw-4", "member")}) as sock:
        start = len(sock.received)
        await sock.send("42/chat,[]")
        error = await sock.wait_event("error", start=start, timeout=5)
        assert error["code"] == "VALIDATION_ERROR"
        await _assert_alive(sock)
