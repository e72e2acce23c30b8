"""Connect reports applied in rounds (a storm of sockets connecting at once).

The connect reports that wait together are applied together: one round trip takes the locks of their
users and reads them (with the sockets' tombstones), one transaction saves them, their announcements
are published with the confirms awaited together, and one round trip lets the locks go — instead of
four round trips and a confirmed publish per report. One drainer task per instance runs the rounds
one after the other; the first report of a quiet moment runs alone at once, and those arriving
meanwhile wait for the next round, so nothing waits on a timer.

What one by one would have said, a round says: a user's tabs in one round are one user (announced
online once), each announcement carries the tenant's active count right after its own user's save,
and a user's announcement leaves before their lock is let go. A report whose user's lock is busy
(another update of theirs, here or on another instance) is handed back to be applied on its own.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relay_contracts import Envelope

from relay_presence import domain
from relay_presence.adapters.store import Held
from relay_presence.announcements import announced, announcement

if TYPE_CHECKING:
    from relay_presence.handlers import Deps

MAX_ROUND = 500  # reports applied in one round; more wait for the next


@dataclass
class PendingConnect:
    tenant: str
    user_id: str
    sid: str
    replica: str
    namespace: str
    user: dict[str, Any]
    correlation_id: str
    # the handler's answer; None: the user's lock was busy, apply it on its own
    future: asyncio.Future[dict[str, Any] | None] = field(init=False)

    @property
    def who(self) -> tuple[str, str]:
        return (self.tenant, self.user_id)


class ConnectRounds:
    """This instance's connect reports waiting for a round, and the drainer that applies them."""

    def __init__(self, max_round: int = MAX_ROUND) -> None:
        self.max_round = max_round
        self._waiting: list[PendingConnect] = []
        self._draining = False

    async def submit(self, deps: Deps, report: PendingConnect) -> dict[str, Any] | None:
        report.future = asyncio.get_running_loop().create_future()
        self._waiting.append(report)
        if not self._draining:
            self._draining = True
            # its own context: the drainer serves many commands, so it must not log as the first one
            asyncio.create_task(self._drain(deps), context=contextvars.Context())  # noqa: RUF006
        return await report.future

    async def _drain(self, deps: Deps) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_round], self._waiting[self.max_round :]
                try:
                    await _round(deps, batch)
                except BaseException as exc:
                    for report in batch:
                        if not report.future.done():
                            report.future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
        finally:
            # nothing awaits between the last empty check and here, so no report can be stranded
            self._draining = False


async def _round(deps: Deps, batch: list[PendingConnect]) -> None:
    users = list(dict.fromkeys(r.who for r in batch))
    replicas = list(dict.fromkeys(r.replica for r in batch))
    held, gone = await deps.store.lock_round(users, [r.sid for r in batch], replicas, deps.clock())
    try:
        answers = await _apply(deps, batch, held, gone)
    finally:
        await deps.store.release([h.lock for h in held.values()])
    for report, answer in zip(batch, answers, strict=True):
        if not report.future.done():
            report.future.set_result(answer)


async def _apply(
    deps: Deps, batch: list[PendingConnect], held: dict[tuple[str, str], Held], gone: set[str]
) -> list[dict[str, Any] | None]:
    now = deps.clock()
    changes: dict[tuple[str, str], tuple[domain.Change, str]] = {}  # user -> their transition, its report's cid
    touched: dict[tuple[str, str], Held] = {}
    for report in batch:
        mine = held.get(report.who)
        if report.sid in gone or mine is None:
            continue
        socket = domain.Socket(report.sid, report.replica, report.namespace, now)
        change = mine.state.connect(socket, report.user, now)
        if change is not None:
            changes[report.who] = (change, report.correlation_id)
        touched[report.who] = mine
    saved = await deps.store.save_many([(h.state, h.snapshot) for h in touched.values()]) if touched else []
    counts = dict(zip(touched, saved, strict=True))
    events: list[tuple[str, Envelope]] = []
    for who, (change, cid) in changes.items():
        events.append(announcement(touched[who].state, change, counts[who], cid))
    if events:
        await deps.publish_many(events)  # under the users' locks, like one by one
    for who, (change, _) in changes.items():
        announced(touched[who].state, change, counts[who])
    answers: list[dict[str, Any] | None] = []
    for report in batch:
        if report.sid in gone:
            answers.append({"ignored": True})  # its disconnect was handled first
        elif (mine := held.get(report.who)) is None:
            answers.append(None)
        else:
            answers.append({"status": mine.state.status, "sockets": len(mine.state.sockets)})
    return answers
