"""FrameWriter (relay_gateway.fanout): frames written while the delivery loop has nothing queued leave at once,
but never ahead of frames already waiting for the flush of the same socket; the slow-consumer bound holds on
both paths. A fake transport stands in for the socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from relay_gateway.fanout import FLUSHER, FrameWriter


class FakeTransport:
    def __init__(self, buffered: int = 0) -> None:
        self.writes: list[bytes] = []
        self.buffered = buffered
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.aborted

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def abort(self) -> None:
        self.aborted = True


def writer_on(transport: FakeTransport, limit: int = 1 << 20) -> FrameWriter:
    return FrameWriter(SimpleNamespace(transport=transport), limit, "sid")  # type: ignore[arg-type]


@pytest.fixture
def direct() -> Iterator[Any]:
    def set_direct(on: bool) -> None:
        FLUSHER.direct = on

    yield set_direct
    FLUSHER.direct = False
    FLUSHER.flush()


async def test_with_nothing_pending_a_direct_frame_is_written_at_once(direct: Any) -> None:
    transport = FakeTransport()
    writer = writer_on(transport)
    direct(True)
    writer.write(b"a")
    writer.write(b"b")
    assert transport.writes == [b"a", b"b"]  # no flush needed


async def test_a_direct_frame_never_overtakes_frames_queued_for_the_flush(direct: Any) -> None:
    transport = FakeTransport()
    writer = writer_on(transport)
    writer.write(b"queued-1")  # e.g. a handler's answer, written in this tick
    writer.write(b"queued-2")
    direct(True)
    writer.write(b"direct")  # the delivery loop's event for the same socket
    assert transport.writes == []
    FLUSHER.flush()
    assert transport.writes == [b"queued-1queued-2direct"]  # one write, in order
    writer.write(b"next")
    assert transport.writes[-1] == b"next"  # nothing pending any more: straight out


async def test_queued_frames_leave_on_the_loops_next_pass_in_one_write() -> None:
    transport = FakeTransport()
    writer = writer_on(transport)
    for frame in (b"1", b"2", b"3"):
        writer.write(frame)
    assert transport.writes == []
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert transport.writes == [b"123"]


@pytest.mark.parametrize("on", [False, True])
async def test_a_socket_over_its_buffer_bound_is_dropped_on_either_path(direct: Any, on: bool) -> None:
    transport = FakeTransport(buffered=2048)
    writer = writer_on(transport, limit=1024)
    direct(on)
    writer.write(b"x")
    FLUSHER.flush()
    assert transport.aborted and writer.overflowed
    writer.write(b"y")
    FLUSHER.flush()
    assert transport.writes == [b"x"]  # nothing more for a dropped socket
