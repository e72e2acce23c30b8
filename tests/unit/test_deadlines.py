"""relay_gateway.deadlines: many due times in one-second slots, one sweep."""

from __future__ import annotations

from relay_gateway.deadlines import Deadlines

from tests.waiting import until


class _NoSweep:
    """Stands in for the sweep task: these tests drive `due` themselves, with no event loop."""

    def done(self) -> bool:
        return False


NO_SWEEP = _NoSweep()


def test_keys_fall_due_in_time_order_never_early_and_once() -> None:
    fired: list[str] = []
    d: Deadlines[str] = Deadlines(fired.append, clock=lambda: 0.0)
    d._sweeper = NO_SWEEP  # type: ignore[assignment]
    d.set("c", 30.2)
    d.set("a", 10.0)
    d.set("b", 10.5)
    assert d.due(9.9) == []
    assert d.due(10.0) == ["a"]
    assert sorted(d.due(11.0)) == ["b"]  # 10.5 is in the slot of second 11: late by < 1 s, not early
    assert d.due(30.9) == []
    assert d.due(31.0) == ["c"]
    assert d.due(1000.0) == [] and len(d) == 0


def test_setting_a_key_again_moves_it_and_discard_forgets_it() -> None:
    d: Deadlines[str] = Deadlines(lambda _: None)
    d._sweeper = NO_SWEEP  # type: ignore[assignment]
    d.set("a", 5)
    d.set("a", 50)
    d.set("b", 5)
    d.discard("b")
    d.discard("never-set")
    assert "a" in d and "b" not in d
    assert d.due(10) == []
    assert d.due(50) == ["a"]
    d.set("b", 60)  # a slot emptied and filled again still comes due
    d.discard("b")
    d.set("b", 60)
    assert d.due(60) == ["b"]


async def test_the_sweep_runs_handlers_when_due_and_survives_a_failing_one() -> None:
    fired: list[str] = []

    def handle(key: str) -> None:
        if key == "bad":
            raise RuntimeError("handler bug")
        fired.append(key)

    d: Deadlines[str] = Deadlines(handle)
    d.set_in("bad", 0)
    d.set_in("good", 0)
    d.set_in("later", 3600)
    await until(lambda: fired == ["good"], timeout=5)
    assert "later" in d
    d.discard("later")
    await until(lambda: d._sweeper is not None and d._sweeper.done(), timeout=5)  # nothing left: it stops
    d.set_in("again", 0)  # and starts again with the next deadline
    await until(lambda: fired == ["good", "again"], timeout=5)
