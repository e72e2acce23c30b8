"""The frames queued in a tick leave in one write, in order; a close ends a batch; drains are honoured."""

from __future__ import annotations

import asyncio

import aiormq.connection
from aiormq.abc import ChannelFrame
from relay_broker import batching


def frame(payload: bytes, *, close: bool = False, drain: asyncio.Future[None] | None = None) -> ChannelFrame:
    return ChannelFrame(payload=payload, should_close=close, drain_future=drain)


async def test_frames_waiting_together_come_out_as_one_payload_in_order() -> None:
    queue: asyncio.Queue[ChannelFrame] = asyncio.Queue()
    for i in range(5):
        queue.put_nowait(frame(b"f%d;" % i))
    gen = batching.BatchingFrameGenerator(queue)
    batch = await gen.__anext__()
    assert batch.payload == b"f0;f1;f2;f3;f4;"
    assert not batch.should_close
    assert queue.empty()


async def test_a_lone_frame_is_passed_through_unchanged() -> None:
    queue: asyncio.Queue[ChannelFrame] = asyncio.Queue()
    only = frame(b"alone")
    queue.put_nowait(only)
    assert await batching.BatchingFrameGenerator(queue).__anext__() is only


async def test_nothing_queued_after_a_close_joins_its_batch() -> None:
    queue: asyncio.Queue[ChannelFrame] = asyncio.Queue()
    for f in (frame(b"a"), frame(b"close-ok", close=True), frame(b"after")):
        queue.put_nowait(f)
    batch = await batching.BatchingFrameGenerator(queue).__anext__()
    assert batch.payload == b"aclose-ok"
    assert batch.should_close
    assert queue.qsize() == 1  # left for no one: the writer returns after a close


async def test_a_batch_drains_every_frame_that_asked_and_is_bounded() -> None:
    loop = asyncio.get_running_loop()
    waiting = [loop.create_future() for _ in range(3)]
    queue: asyncio.Queue[ChannelFrame] = asyncio.Queue()
    for i in range(batching.MAX_FRAMES + 10):
        queue.put_nowait(frame(b"x", drain=waiting[i] if i < 3 else None))
    batch = await batching.BatchingFrameGenerator(queue).__anext__()
    assert len(batch.payload) == batching.MAX_FRAMES
    assert batch.should_drain
    batch.drain()
    assert all(f.done() for f in waiting)
    assert queue.qsize() == 10


def test_installed_for_every_aiormq_connection() -> None:
    import relay_broker.broker  # noqa: F401  (installs on import)

    assert aiormq.connection.FrameGenerator is batching.BatchingFrameGenerator
    batching.install()  # idempotent
    assert aiormq.connection.FrameGenerator is batching.BatchingFrameGenerator
