"""Multiple acks of a lane's commands: one frame for the handlers that finish together, never one that would
settle a delivery still running or never handled here."""

from __future__ import annotations

import asyncio
import random

import pytest
from relay_broker.acks import MAX_SETTLED_BEYOND, ChannelAcks


class BrokerChannel:
    """The broker's side of one channel: its unsettled deliveries, and what `multiple` does to them."""

    def __init__(self, delivered: int) -> None:
        self.unsettled = set(range(1, delivered + 1))
        self.frames: list[tuple[str, int, bool]] = []
        self.running: set[int] = set()  # handlers in progress: no ack may settle them

    def _take(self, tag: int, multiple: bool) -> None:
        if tag not in self.unsettled:
            raise AssertionError(f"PRECONDITION_FAILED - unknown delivery tag {tag}")
        covered = {t for t in self.unsettled if t <= tag} if multiple else {tag}
        assert not covered & self.running, f"settled a running delivery: {sorted(covered & self.running)}"
        self.unsettled -= covered

    async def basic_ack(self, tag: int, multiple: bool = False, wait: bool = True) -> None:
        self.frames.append(("ack", tag, multiple))
        self._take(tag, multiple)

    async def basic_nack(self, tag: int, multiple: bool = False, requeue: bool = True, wait: bool = True) -> None:
        self.frames.append(("nack", tag, multiple))
        self._take(tag, multiple)

    async def basic_reject(self, tag: int, requeue: bool = False, wait: bool = True) -> None:
        self.frames.append(("reject", tag, False))
        self._take(tag, False)


async def handle(acks: ChannelAcks, broker: BrokerChannel, tag: int, gate: asyncio.Event, outcome: str) -> None:
    broker.running.add(tag)
    await gate.wait()
    broker.running.discard(tag)
    if outcome == "ack":
        await acks.ack(tag)
    elif outcome == "nack":
        await acks.nack(tag, requeue=True)
    else:
        await acks.reject(tag)


async def test_handlers_finishing_together_are_acked_by_one_frame():
    broker = BrokerChannel(50)
    acks = ChannelAcks(broker)  # type: ignore[arg-type]
    done = asyncio.Event()
    tasks = [asyncio.create_task(handle(acks, broker, t, done, "ack")) for t in range(1, 51)]
    await asyncio.sleep(0)
    done.set()
    await asyncio.gather(*tasks)
    assert broker.frames == [("ack", 50, True)] and broker.unsettled == set()


async def test_one_still_running_below_is_never_covered_and_the_rest_go_one_by_one():
    broker = BrokerChannel(6)
    acks = ChannelAcks(broker)  # type: ignore[arg-type]
    slow, fast = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(handle(acks, broker, 1, fast, "ack"))]
    tasks.append(asyncio.create_task(handle(acks, broker, 2, slow, "ack")))
    tasks += [asyncio.create_task(handle(acks, broker, t, fast, "ack")) for t in (3, 4, 5, 6)]
    await asyncio.sleep(0)
    fast.set()
    await asyncio.gather(tasks[0], *tasks[2:])
    assert broker.unsettled == {2}  # 1 by a multiple ack, 3-6 one by one: none of them settled 2
    assert ("ack", 1, True) in broker.frames and all(not m for _, t, m in broker.frames if t > 2)
    slow.set()
    await tasks[1]
    assert broker.unsettled == set()
    assert acks._upto == 6  # the stretch caught up: the next ones are batched again


async def test_a_delivery_never_handled_here_is_left_to_the_broker():
    broker = BrokerChannel(10)
    acks = ChannelAcks(broker)  # type: ignore[arg-type]
    done = asyncio.Event()
    tasks = [asyncio.create_task(handle(acks, broker, t, done, "ack")) for t in range(1, 11) if t != 4]
    await asyncio.sleep(0)
    done.set()
    await asyncio.gather(*tasks)
    assert broker.unsettled == {4}  # left for the next consumer when the lane's channel closes


@pytest.mark.parametrize("gaps", [0, 5])
@pytest.mark.parametrize("seed", range(10))
async def test_random_orders_outcomes_and_gaps_settle_exactly_what_was_handled(seed, gaps):
    rng = random.Random(seed)
    count = 200
    never = set(rng.sample(range(1, count + 1), gaps))
    broker = BrokerChannel(count)
    acks = ChannelAcks(broker)  # type: ignore[arg-type]
    gates = {t: asyncio.Event() for t in range(1, count + 1)}
    outcomes = {t: rng.choice(["ack"] * 8 + ["nack", "reject"]) for t in gates}
    tasks = [asyncio.create_task(handle(acks, broker, t, gates[t], outcomes[t])) for t in gates if t not in never]
    await asyncio.sleep(0)
    order = [t for t in gates if t not in never]
    rng.shuffle(order)
    while order:  # a few finish in each loop pass, in any order
        for _ in range(rng.randint(1, 20)):
            if order:
                gates[order.pop()].set()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert broker.unsettled == never  # BrokerChannel asserts no running delivery was ever settled


async def test_a_gap_that_never_closes_turns_the_channel_to_one_by_one_acks():
    count = MAX_SETTLED_BEYOND + 10
    broker = BrokerChannel(count)
    acks = ChannelAcks(broker)  # type: ignore[arg-type]
    for tag in range(2, count + 1):  # tag 1 is never handled
        await acks.ack(tag)
    assert broker.unsettled == {1} and acks._one_by_one and not acks._settled  # bounded memory
