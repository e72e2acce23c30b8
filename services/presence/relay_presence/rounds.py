"""Updates of many users applied in rounds (a storm of sockets connecting or going away at once).

The socket reports (and sweep steps) that wait together are applied together: one round trip takes
their users' locks and reads them (with the sockets' tombstones), one transaction saves them, their
announcements are published with the confirms awaited together, and one round trip lets the locks
go — instead of four round trips and a confirmed publish per report. The rounds run one after the
other in this instance's drainer (relay_ops.rounds), so nothing waits on a timer.

What one by one would have said, a round says: a user's reports in a round are applied in order to
one state; each announcement carries the tenant's active count right after its own user's save (a
user's second transition waits for the next round, so there is one per user and round); and a user's
announcement leaves before their lock is let go. A report whose user's lock is busy (an update of
theirs that is not in the round, here or on another instance) is handed back (`None`) to be applied
on its own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relay_contracts import Envelope
from relay_ops.rounds import Drainer

from relay_presence import domain
from relay_presence.adapters.store import Held
from relay_presence.announcements import announced, announcement

if TYPE_CHECKING:
    from relay_presence.handlers import Deps

MAX_ROUND = 500  # reports applied in one round; more wait for the next
Answer = dict[str, Any]


@dataclass
class Report:
    """A change to one user's presence, waiting for a round."""

    tenant: str
    user_id: str
    change: Callable[[domain.UserPresence], domain.Change | None]
    correlation_id: str
    sid: str | None = None
    # a connect: ignored when its socket already went away; its replica is known from its first socket
    arriving_on: str | None = None
    bury: bool = False  # a disconnect: its socket gets a tombstone before the lock is taken
    future: asyncio.Future[Answer | None] = field(init=False)

    @property
    def who(self) -> tuple[str, str]:
        return (self.tenant, self.user_id)


class Rounds:
    """This instance's reports waiting for a round, and the drainer that applies them."""

    def __init__(self, max_round: int = MAX_ROUND) -> None:
        self._drainer: Drainer[Report] = Drainer(max_round)

    async def submit(self, deps: Deps, report: Report) -> Answer | None:
        """The report's answer (`{status, sockets}`, or `{ignored: True}` for a connect whose socket already
        went away); None when its user's lock was busy: apply it on its own."""
        report.future = asyncio.get_running_loop().create_future()
        answer: Answer | None = await self._drainer.submit(report, functools.partial(_round, deps))
        return answer


async def _round(deps: Deps, batch: list[Report]) -> list[Report]:
    """Apply what it can of `batch`; returns the reports left for the next round."""
    users = list(dict.fromkeys(r.who for r in batch))
    buried = [r.sid for r in batch if r.bury and r.sid]
    checked = [r.sid for r in batch if r.arriving_on and r.sid]
    replicas = list(dict.fromkeys(r.arriving_on for r in batch if r.arriving_on))
    held, gone = await deps.store.lock_round(users, buried, checked, replicas, deps.clock())
    try:
        later = await _apply(deps, batch, held, gone)
    finally:
        await deps.store.release([h.lock for h in held.values()])
    deferred = {id(r) for r in later}
    for report in batch:
        if id(report) not in deferred and not report.future.done():
            mine = held.get(report.who)
            report.future.set_result(None if mine is None else answer_of(mine.state))
    return later


async def _apply(deps: Deps, batch: list[Report], held: dict[tuple[str, str], Held], gone: set[str]) -> list[Report]:
    changes: dict[tuple[str, str], tuple[domain.Change, str]] = {}  # user -> their transition, its report's cid
    touched: dict[tuple[str, str], Held] = {}
    later: list[Report] = []
    for report in batch:
        mine = held.get(report.who)
        if mine is None:
            continue  # handed back
        if report.who in changes:
            later.append(report)  # the user already changed in this round: their next change has its own count
            continue
        if report.arriving_on and report.sid in gone:
            if not report.future.done():  # (its caller may have been cancelled meanwhile)
                report.future.set_result({"ignored": True})  # its disconnect was handled first
            continue
        change = report.change(mine.state)
        if change is not None:
            changes[report.who] = (change, report.correlation_id)
        touched[report.who] = mine
    saved = await deps.store.save_many([(h.state, h.snapshot) for h in touched.values()]) if touched else []
    counts = dict(zip(touched, saved, strict=True))
    events: list[tuple[str, Envelope]] = [
        announcement(touched[who].state, change, counts[who], cid) for who, (change, cid) in changes.items()
    ]
    if events:
        await deps.publish_many(events)  # under the users' locks, as one by one
    for who, (change, _) in changes.items():
        announced(touched[who].state, change, counts[who])
    return later


def answer_of(state: domain.UserPresence) -> Answer:
    """What a socket report is answered: the user's status and open sockets after it."""
    return {"status": state.status, "sockets": len(state.sockets)}
