"""LeanQueue keeps asyncio.Queue's contract for what Engine.IO and uvicorn use of it."""

from __future__ import annotations

import asyncio

import pytest
from relay_gateway.leanqueue import LeanQueue


async def test_first_in_first_out_across_a_long_backlog() -> None:
    q = LeanQueue()
    for n in range(1000):
        q.put_nowait(n)
    taken = [q.get_nowait() for _ in range(600)]
    for n in range(1000, 1100):
        await q.put(n)
    taken += [await q.get() for _ in range(500)]
    assert taken == list(range(1100))
    assert q.empty() and q.qsize() == 0
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


async def test_a_waiting_getter_gets_the_next_item_and_join_waits_for_task_done() -> None:
    q = LeanQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.put_nowait("a")
    assert await asyncio.wait_for(getter, 1) == "a"
    joined = asyncio.create_task(q.join())
    await asyncio.sleep(0)
    assert not joined.done()
    q.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError):
        q.task_done()


async def test_a_cancelled_getter_passes_its_wake_up_to_the_next_one() -> None:
    q = LeanQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.put_nowait("x")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    assert await asyncio.wait_for(second, 1) == "x"
    assert first.cancelled()


async def test_lean_event_wakes_every_waiter_on_set_and_waits_again_after_clear() -> None:
    from relay_gateway.leanqueue import LeanEvent

    event = LeanEvent()
    assert not event.is_set()
    waiters = [asyncio.create_task(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    event.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert await event.wait() is True  # set: returns at once
    event.clear()
    late = asyncio.create_task(event.wait())
    await asyncio.sleep(0)
    assert not late.done()
    late.cancel()  # a cancelled waiter leaves nothing behind
    await asyncio.gather(late, return_exceptions=True)
    event.set()
    assert event._waiters is None
