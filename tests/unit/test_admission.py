"""AdmissionGate: at most K admissions per event-loop pass, first come first served; 0: unlimited."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from pydantic import ValidationError
from relay_gateway.admission import AdmissionGate
from relay_gateway.bootstrap import build
from relay_gateway.packets import GuardedServer
from relay_gateway.settings import GatewaySettings


class Passes:
    """Counts the loop's passes: a callback that schedules itself runs once per pass."""

    def __init__(self) -> None:
        self.n = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.n += 1
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


def callers(
    gate: AdmissionGate, passes: Passes, names: list[str]
) -> tuple[dict[str, asyncio.Task[None]], list[tuple[str, int]]]:
    """A task per name, all arriving in one pass; and (name, pass it was admitted in), in admission order."""
    admitted: list[tuple[str, int]] = []

    async def caller(name: str) -> None:
        await gate.admit()
        admitted.append((name, passes.n))

    return {name: asyncio.create_task(caller(name)) for name in names}, admitted


async def admit_all(gate: AdmissionGate, count: int, passes: Passes) -> list[tuple[int, int]]:
    tasks, admitted = callers(gate, passes, [str(i) for i in range(count)])
    await asyncio.gather(*tasks.values())
    return [(int(name), at) for name, at in admitted]


async def test_at_most_k_per_pass_in_arrival_order() -> None:
    passes = Passes()
    admitted = await admit_all(AdmissionGate(3), 20, passes)
    passes.stop()
    assert [i for i, _ in admitted] == list(range(20))
    per_pass = Counter(p for _, p in admitted)
    assert max(per_pass.values()) == 3
    assert len(per_pass) == 7  # ceil(20 / 3)
    # the first three in the pass they came; the rest, three a pass, from the pass after the first refill on
    first, *waited = sorted(per_pass)
    assert waited == list(range(first + 2, first + 8))


async def test_zero_is_unlimited() -> None:
    passes = Passes()
    gate = AdmissionGate(0)
    admitted = await admit_all(gate, 500, passes)
    passes.stop()
    assert [i for i, _ in admitted] == list(range(500))
    assert len({p for _, p in admitted}) == 1
    assert gate.waiting == 0


async def test_a_caller_cancelled_in_line_leaves_it_and_costs_no_slot() -> None:
    passes = Passes()
    gate = AdmissionGate(1)
    tasks, admitted = callers(gate, passes, list("abcd"))
    await asyncio.sleep(0)  # all four arrive: a is admitted, b, c, d wait
    assert admitted == [("a", passes.n)] and gate.waiting == 3
    tasks["c"].cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    passes.stop()
    assert tasks["c"].cancelled()
    assert [name for name, _ in admitted] == ["a", "b", "d"]
    (_, b_pass), (_, d_pass) = admitted[1:]
    assert d_pass == b_pass + 1  # c's place in line took no pass of its own
    assert gate.waiting == 0


async def test_a_caller_cancelled_after_admission_gives_nothing_back() -> None:
    """Admitted by a refill, cancelled before it resumed: its slot is spent, the next pass still admits only K."""
    passes = Passes()
    gate = AdmissionGate(2)
    tasks, admitted = callers(gate, passes, list("abcdefg"))
    loop = asyncio.get_running_loop()

    def cancel_c_once_admitted() -> None:
        # the refill admitted c and d (e, f, g still wait); c has not resumed yet
        if gate.waiting == 3 and not tasks["c"].done():
            tasks["c"].cancel()
        elif not tasks["c"].done():
            loop.call_soon(cancel_c_once_admitted)

    loop.call_soon(cancel_c_once_admitted)
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    passes.stop()
    assert tasks["c"].cancelled()
    assert [name for name, _ in admitted] == ["a", "b", "d", "e", "f", "g"]
    per_pass = Counter(p for _, p in admitted)
    assert max(per_pass.values()) == 2
    at = dict(admitted)
    assert at["e"] == at["f"] == at["d"] + 1 and at["g"] == at["e"] + 1
    assert gate.waiting == 0


async def test_an_idle_gate_schedules_nothing() -> None:
    gate = AdmissionGate(2)
    await gate.admit()
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the refill ran and, with nothing handed out since, did not schedule another
    assert gate._refill is None


def test_the_gateway_paces_both_handshakes_by_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECT_ADMISSION_PER_PASS", "2")
    sio = build(GatewaySettings()).gw.sio
    assert isinstance(sio, GuardedServer)
    assert sio.admission.per_pass == 2
    assert sio.eio.admission is sio.admission  # the Engine.IO handshake and the namespace connect share it
    with pytest.raises(ValidationError):
        GatewaySettings(connect_admission_per_pass=-1)
