"""Work applied in rounds: what is submitted while a round runs waits and goes together in the next.

One drainer task per owner runs the rounds one after the other; the first item of a quiet moment runs
alone at once, so nothing waits on a timer. The message service's group commit (relay_message.ingest)
and the presence service's rounds (relay_presence.rounds) are both this.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar


class Pending(Protocol):
    """An item waiting for a round; the round answers it through its future."""

    future: asyncio.Future[Any]


P = TypeVar("P", bound=Pending)
# applies a round; returns the items it leaves for the next one (they go ahead of those that arrived meanwhile)
RunRound = Callable[[list[P]], Awaitable[list[P] | None]]


class Drainer(Generic[P]):
    def __init__(self, max_round: int) -> None:
        self.max_round = max_round
        self._waiting: list[P] = []
        self._draining = False

    async def submit(self, item: P, run: RunRound[P]) -> Any:
        """Queue `item` (its future already made) for the next round of `run`, and wait for its answer."""
        self._waiting.append(item)
        if not self._draining:
            self._draining = True
            # its own context: the drainer serves many callers, so it must not log as the first one
            asyncio.create_task(self._drain(run), context=contextvars.Context())  # noqa: RUF006
        return await item.future

    async def _drain(self, run: RunRound[P]) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_round], self._waiting[self.max_round :]
                try:
                    later = await run(batch)
                except BaseException as exc:
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                else:
                    if later:
                        self._waiting[:0] = later  # ahead of what arrived meanwhile: each caller's items stay in order
        finally:
            # nothing awaits between the last empty check and here, so no item can be stranded
            self._draining = False
