"""The drainer both group-commit paths share (relay_ops.rounds)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from relay_ops.rounds import Drainer


@dataclass
class Item:
    name: str
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


async def test_what_arrives_during_a_round_goes_together_in_the_next() -> None:
    rounds: list[list[str]] = []
    gate = asyncio.Event()

    async def run(batch: list[Item]) -> None:
        rounds.append([i.name for i in batch])
        if len(rounds) == 1:
            await gate.wait()
        for i in batch:
            i.future.set_result(i.name.upper())

    drainer: Drainer[Item] = Drainer(max_round=2)
    first = asyncio.ensure_future(drainer.submit(Item("a"), run))
    await asyncio.sleep(0)
    others = [asyncio.ensure_future(drainer.submit(Item(n), run)) for n in "bcd"]
    await asyncio.sleep(0)
    gate.set()
    assert await first == "A"
    assert [await o for o in others] == ["B", "C", "D"]
    assert rounds == [["a"], ["b", "c"], ["d"]]  # the first alone at once, then at most max_round


async def test_items_left_for_later_go_ahead_of_newer_ones() -> None:
    rounds: list[list[str]] = []
    gate = asyncio.Event()

    async def run(batch: list[Item]) -> list[Item]:
        rounds.append([i.name for i in batch])
        if len(rounds) == 1:
            await gate.wait()
            keep = [i for i in batch if i.name == "a2"]  # say, a2's user already changed in this round
        else:
            keep = []
        for i in batch:
            if i not in keep:
                i.future.set_result(i.name)
        return keep

    drainer: Drainer[Item] = Drainer(max_round=10)
    older = [asyncio.ensure_future(drainer.submit(Item(n), run)) for n in ("a1", "a2")]
    await asyncio.sleep(0)
    newer = asyncio.ensure_future(drainer.submit(Item("b"), run))  # arrives while the first round runs
    await asyncio.sleep(0)
    gate.set()
    assert [await o for o in older] == ["a1", "a2"]
    assert await newer == "b"
    assert rounds == [["a1", "a2"], ["a2", "b"]]


async def test_a_failed_round_fails_its_items_and_the_next_round_runs() -> None:
    async def run(batch: list[Item]) -> None:
        if batch[0].name == "bad":
            raise RuntimeError("database down")
        for i in batch:
            i.future.set_result("ok")

    drainer: Drainer[Item] = Drainer(max_round=1)
    bad = asyncio.ensure_future(drainer.submit(Item("bad"), run))
    good = asyncio.ensure_future(drainer.submit(Item("good"), run))
    with pytest.raises(RuntimeError, match="database down"):
        await bad
    assert await good == "ok"
