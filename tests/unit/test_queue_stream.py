"""The event stream's frame reader (relay_broker.queue_stream.FrameReader) and the deferred acks
(relay_gateway.event_acks) without a broker: frames built by pamqp, as RabbitMQ sends them, fed in pieces."""

from __future__ import annotations

import asyncio
from typing import Any

import pamqp.frame
import pytest
from pamqp import commands as c
from pamqp.body import ContentBody
from pamqp.header import ContentHeader
from pamqp.heartbeat import Heartbeat
from relay_broker.queue_stream import FrameReader, ProtocolError
from relay_gateway.event_acks import DeferredAcks


def delivery(tag: int, body: bytes, *, frame_max: int = 4096, consumer: str = "relay.gateway.gw1.abc") -> bytes:
    """A Basic.Deliver, its content header and its body in frames of at most `frame_max` bytes of payload."""
    frames = [
        pamqp.frame.marshal(
            c.Basic.Deliver(consumer_tag=consumer, delivery_tag=tag, exchange="relay.events", routing_key="acme.x"), 1
        ),
        pamqp.frame.marshal(ContentHeader(body_size=len(body)), 1),
    ]
    for at in range(0, len(body), frame_max):
        frames.append(pamqp.frame.marshal(ContentBody(body[at : at + frame_max]), 1))
    return b"".join(frames)


class Recorder:
    def __init__(self) -> None:
        self.deliveries: list[tuple[int, bytes]] = []
        self.methods: list[tuple[int, Any]] = []
        self.reader = FrameReader(lambda tag, body: self.deliveries.append((tag, body)), self.on_method)

    def on_method(self, channel: int, method: Any) -> None:
        self.methods.append((channel, method))


def stream_bytes() -> bytes:
    return b"".join(
        [
            pamqp.frame.marshal(c.Basic.ConsumeOk(consumer_tag="t"), 1),
            delivery(1, b'{"n":1}'),
            pamqp.frame.marshal(Heartbeat(), 0),
            delivery(2, b""),  # no body frame at all
            delivery(3, bytes(range(256)) * 40, frame_max=1000),  # 10,240 bytes in 11 body frames
            pamqp.frame.marshal(c.Connection.Blocked(reason="low memory"), 0),
            delivery(2**40, b"last", consumer=""),  # a big tag, an empty consumer tag
        ]
    )


def check(recorder: Recorder) -> None:
    assert recorder.deliveries == [(1, b'{"n":1}'), (2, b""), (3, bytes(range(256)) * 40), (2**40, b"last")]
    assert [(channel, method.name) for channel, method in recorder.methods] == [
        (1, "Basic.ConsumeOk"),
        (0, "Connection.Blocked"),
    ]
    assert recorder.methods[1][1].reason == "low memory"


def test_deliveries_and_other_frames_come_out_whole_and_in_order_from_one_read() -> None:
    recorder = Recorder()
    recorder.reader.feed(stream_bytes())
    check(recorder)


@pytest.mark.parametrize("piece", [1, 7, 8, 13, 1000])
def test_frames_split_across_reads_at_any_byte_come_out_the_same(piece: int) -> None:
    data = stream_bytes()
    recorder = Recorder()
    for at in range(0, len(data), piece):
        recorder.reader.feed(data[at : at + piece])
        # nothing comes out before its last byte has arrived
        assert len(recorder.deliveries) <= 4
    check(recorder)


def test_a_frame_without_its_end_byte_is_a_protocol_error() -> None:
    frame = bytearray(delivery(1, b"x"))
    frame[-1] = 0x00
    with pytest.raises(ProtocolError):
        Recorder().reader.feed(bytes(frame))


def test_a_body_without_its_header_or_a_method_inside_a_message_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        Recorder().reader.feed(pamqp.frame.marshal(ContentBody(b"stray"), 1))
    deliver_only = delivery(1, b"x").split(b"\xce")[0] + b"\xce"  # the Basic.Deliver frame, no header yet
    with pytest.raises(ProtocolError):
        Recorder().reader.feed(deliver_only + pamqp.frame.marshal(c.Basic.ConsumeOk(consumer_tag="t"), 1))


class FakeLink:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self.is_closed = False

    def ack(self, tag: int) -> None:
        self.acked.append(tag)


async def test_acks_go_in_batches_and_a_drained_queue_is_acked_after_the_delay() -> None:
    acks = DeferredAcks(batch=4, delay=0.05)
    link = FakeLink()
    for tag in range(1, 10):
        acks.handled(link, tag, drained=False)  # type: ignore[arg-type]
    assert link.acked == [4, 8]  # one multiple ack per batch
    acks.handled(link, 10, drained=True)
    assert link.acked == [4, 8]  # drained: waits for more to share the ack
    await asyncio.sleep(0.1)
    assert link.acked == [4, 8, 10]
    acks.close()


async def test_tags_of_an_ended_connection_are_never_acked_on_the_next_one() -> None:
    acks = DeferredAcks(batch=4, delay=0.05)
    old, new = FakeLink(), FakeLink()
    acks.handled(old, 1, drained=False)  # type: ignore[arg-type]
    acks.handled(old, 2, drained=True)  # type: ignore[arg-type]
    old.is_closed = True
    acks.handled(new, 1, drained=True)  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    assert old.acked == [] and new.acked == [1]
    # an ended link's pending ack is dropped, not written
    acks.handled(new, 2, drained=True)  # type: ignore[arg-type]
    new.is_closed = True
    await asyncio.sleep(0.1)
    assert new.acked == [1]
    acks.close()
