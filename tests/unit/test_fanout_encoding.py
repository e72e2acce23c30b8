"""The room emit's EVENT text (relay_gateway.fanout.FanoutEmit): byte for byte what python-socketio's own packet
encodes, for any JSON data and namespace; data with bytes (a binary event) or that JSON cannot carry is left to
python-socketio's packets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from relay_gateway.fanout import FanoutEmit
from socketio import packet as sio_packet


class OtherPacket(sio_packet.Packet):  # type: ignore[misc]
    pass


def manager(packet_class: type = sio_packet.Packet) -> FanoutEmit:
    m = FanoutEmit()
    m.server = SimpleNamespace(packet_class=packet_class)
    return m


@pytest.mark.parametrize("namespace", ["/", "/chat", "/mensajeria"])
@pytest.mark.parametrize(
    "data",
    [
        ["bench", {"t": 1764550000123.456, "n": 12345}],
        ["message:new", {"text": "¿Qué tal? 👋 \"q\" \\ <b>", "tags": ["a", "b"], "nested": {"x": [1, 2.5, None]}}],
        ["presence", True, False, None, 0, -1, 1e300, 2**70],
        ["empty"],
        ["status", {"": "", "unicode key ñ": {"deep": [[[]]]}}],
    ],
)
def test_the_event_text_is_python_socketios_own_encoding(namespace: str, data: list[Any]) -> None:
    expected = sio_packet.Packet(sio_packet.EVENT, namespace=namespace, data=data).encode()
    assert manager()._event_text(namespace, data) == expected


@pytest.mark.parametrize(
    "data",
    [
        ["file", b"\x00\x01"],
        ["file", {"chunk": bytearray(b"abc")}],
        ["when", {"at": object()}],
    ],
)
def test_bytes_or_values_json_cannot_carry_are_left_to_python_socketio(data: list[Any]) -> None:
    assert manager()._event_text("/", data) is None


def test_another_packet_class_keeps_its_own_encoding() -> None:
    assert manager(OtherPacket)._event_text("/", ["bench", {"n": 1}]) is None


def test_circular_data_is_left_to_python_socketio() -> None:
    loop: list[Any] = ["again"]
    loop.append(loop)
    assert manager()._event_text("/", ["echo", loop]) is None
    with pytest.raises((ValueError, RecursionError)):  # as it did before the fast text
        sio_packet.Packet(sio_packet.EVENT, namespace="/", data=["echo", loop]).encode()
