"""One socket write for every AMQP frame queued in a loop tick, not one write per frame.

aiormq's connection has a writer task that takes frames (a publish, an ack, a bind, ...) from its write
queue and writes each with its own `StreamWriter.write`: a `send()` system call per command when the
socket keeps up. A profile of a gateway during a 1,000-socket connect storm put 16 % of its CPU in those
writes (binds, presence reports, acks, command publishes). The frames a tick queues are all there when
the writer task wakes, so `BatchingFrameGenerator` hands it everything waiting as one frame: the same bytes
in the same order, one write.

The writer is private to aiormq and finds its frame source by the module name `FrameGenerator`:
`install()` replaces that name, once per process, and fails loudly on an aiormq that no longer has it.
"""

from __future__ import annotations

import os
from typing import Any

import aiormq.connection
from aiormq.abc import ChannelFrame

# at most this many frames in one write (a backlog of large publishes is written in bounded slices)
MAX_FRAMES = 256
_original = aiormq.connection.FrameGenerator


class FrameBatch:
    """Several queued frames written as one: aiormq's writer reads `payload`, `should_close`,
    `should_drain` and calls `drain()` after its write (and, when asked, its `writer.drain()`)."""

    __slots__ = ("_frames", "payload", "should_close")

    def __init__(self, frames: list[ChannelFrame]) -> None:
        self._frames = frames
        self.payload = b"".join(frame.payload for frame in frames)
        self.should_close = frames[-1].should_close  # a closing frame is always a batch's last

    @property
    def should_drain(self) -> bool:
        return any(frame.should_drain for frame in self._frames)

    def drain(self) -> None:
        for frame in self._frames:
            frame.drain()


class BatchingFrameGenerator(_original):
    async def __anext__(self) -> Any:
        frame = await super().__anext__()
        queue = self.queue
        if frame.should_close or queue.empty():
            return frame
        frames = [frame]
        while not queue.empty() and len(frames) < MAX_FRAMES:
            more = queue.get_nowait()
            queue.task_done()
            frames.append(more)
            if more.should_close:  # nothing is written after the connection's close
                break
        return FrameBatch(frames)


def install() -> None:
    if os.environ.get("RELAY_AMQP_FRAME_BATCHING", "1") == "0":  # an escape hatch, and for A/B measurements
        return
    if aiormq.connection.FrameGenerator is BatchingFrameGenerator:
        return
    if aiormq.connection.FrameGenerator is not _original:
        raise RuntimeError("aiormq's FrameGenerator was replaced by someone else; frame batching not installed")
    aiormq.connection.FrameGenerator = BatchingFrameGenerator  # type: ignore[misc]
