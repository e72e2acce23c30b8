"""The group commit's pipeline: a round is announced while the next one writes, and events still leave in
seq order; a round whose write failed, or that was written behind an announce that failed, announces nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from pymongo.errors import AutoReconnect
from relay_contracts import Envelope
from relay_message import handlers
from relay_message.handlers import Deps
from relay_message.ingest import EarlierAnnounceFailed

from tests.unit.fakes import FakeConversations, FakeMessages, Published
from tests.unit.test_send_message import cmd, open_chat

DEADLINE_SECONDS = 5.0


class GatedBatches:
    """`publish_batch` whose first call waits for `release` (and then fails if told to): an announce in flight."""

    def __init__(self, fail_first: BaseException | None = None) -> None:
        self.batches: list[list[tuple[str, Envelope]]] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self._fail_first = fail_first
        self._calls = 0

    async def __call__(self, events: list[tuple[str, Envelope]]) -> None:
        self._calls += 1
        if self._calls == 1:
            self.entered.set()
            await self.release.wait()
            if self._fail_first is not None:
                raise self._fail_first
        self.batches.append(events)

    def seqs(self) -> list[int]:
        return [e.data["seq"] for batch in self.batches for _, e in batch if e.type == "message.created"]


async def until(condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE_SECONDS
    while not condition():
        assert loop.time() < give_up, "condition not reached in time"
        await asyncio.sleep(0)


def deps_with(publish_batch: GatedBatches) -> Deps:
    return Deps(
        FakeConversations(),  # type: ignore[arg-type]
        FakeMessages(),  # type: ignore[arg-type]
        Published(),
        publish_batch=publish_batch,
    )


def sending(deps: Deps, *keys: str) -> list[asyncio.Task[dict]]:
    return [
        asyncio.create_task(
            handlers.send_message(
                cmd("message.send", "v1", ("visitor",), conversationId="c1", content=k, clientMessageId=k), deps
            )
        )
        for k in keys
    ]


async def test_the_next_round_is_written_while_the_previous_one_is_announced_and_events_keep_seq_order():
    gate = GatedBatches()
    deps = deps_with(gate)
    await open_chat(deps)
    first = sending(deps, "a1", "a2", "a3")
    await gate.entered.wait()  # round 1 is written and its announce is in flight
    second = sending(deps, "b1", "b2")
    inserts = deps.messages.inserts  # type: ignore[attr-defined]
    await until(lambda: len(inserts) == 2)  # round 2 written meanwhile: the write did not wait for the announce
    assert gate.batches == [] and not any(t.done() for t in first + second)  # nobody answered before its events
    gate.release.set()
    answers = await asyncio.gather(*first, *second)
    assert [a["seq"] for a in answers] == [1, 2, 3, 4, 5]
    assert gate.seqs() == [1, 2, 3, 4, 5]  # round 2's events left after round 1's
    assert len(gate.batches) == 2


async def test_a_round_written_behind_a_failed_announce_is_held_back_and_its_retry_reannounces_in_order():
    gate = GatedBatches(fail_first=ConnectionError("broker went away"))
    deps = deps_with(gate)
    await open_chat(deps)
    first = sending(deps, "a1", "a2")
    await gate.entered.wait()
    second = sending(deps, "b1", "b2")
    inserts = deps.messages.inserts  # type: ignore[attr-defined]
    await until(lambda: len(inserts) == 2)  # written while round 1's announce was in flight
    gate.release.set()  # ... which now fails
    for task in first:
        with pytest.raises(ConnectionError):
            await task
    for task in second:
        with pytest.raises(EarlierAnnounceFailed):  # not a RelayError: serve_commands requeues the command
            await task
    assert gate.batches == []  # round 2's events did not overtake round 1's
    assert sorted(d["seq"] for d in deps.messages.docs) == [1, 2, 3, 4]  # type: ignore[attr-defined]
    # the requeued commands come back (same client ids): stored once, answered with the originals, re-announced
    again = await asyncio.gather(*sending(deps, "a1", "a2", "b1", "b2"))
    assert [a["seq"] for a in again] == [1, 2, 3, 4]
    assert gate.seqs() == [1, 2, 3, 4] and len(deps.messages.docs) == 4  # type: ignore[attr-defined]
    # a round written after the failure was settled is announced as usual
    (later,) = await asyncio.gather(*sending(deps, "c1"))
    assert later["seq"] == 5 and gate.seqs()[-1] == 5


async def test_a_round_whose_write_failed_announces_nothing_and_the_next_round_goes_on():
    gate = GatedBatches()
    gate.release.set()
    deps = deps_with(gate)
    await open_chat(deps)
    real_insert = deps.messages.insert_batch

    async def database_gone(docs):  # type: ignore[no-untyped-def]
        raise AutoReconnect("the database went away mid-write")

    deps.messages.insert_batch = database_gone  # type: ignore[method-assign]
    with pytest.raises(AutoReconnect):
        await sending(deps, "lost")[0]
    assert gate.batches == [] and deps.messages.docs == []  # type: ignore[attr-defined]
    deps.messages.insert_batch = real_insert  # type: ignore[method-assign]
    answers = await asyncio.gather(*sending(deps, "x1", "x2"))
    assert [a["seq"] for a in answers] == [1, 2] and gate.seqs() == [1, 2]
