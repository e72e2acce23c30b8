"""SPEC §7: UNAVAILABLE means "not applied". A command past its deadline is refused before any write
(and the race with the caller's timer is settled by claims: relay_contracts.claims)."""

from __future__ import annotations

from relay_contracts.envelope import Envelope
from relay_contracts.errors import ErrorCode, RelayError


def expired_error(env: Envelope) -> RelayError:
    return RelayError(ErrorCode.UNAVAILABLE, f"{env.type} expired before it was applied; nothing was changed")


class CommitDelays:
    """TEST ONLY: `TEST_COMMIT_DELAYS` slows a handler between its deadline check and its claim (`before`) and
    between its claim and its write (`after`), so that tests can put a caller's timer exactly inside the race
    that claims settle (relay_contracts.claims). `"0/0,0.1/3,3.5/0"`: each write (a group-commit round of sends,
    an order write) takes the next pair, cycling. Empty (the default, and the only value for a deployment):
    no delay and no cost."""

    def __init__(self, spec: str = "") -> None:
        self._pairs: list[tuple[float, float]] = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            before, _, after = part.partition("/")
            self._pairs.append((float(before or 0), float(after or 0)))
        self._taken = 0

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def next(self) -> tuple[float, float]:
        if not self._pairs:
            return (0.0, 0.0)
        pair = self._pairs[self._taken % len(self._pairs)]
        self._taken += 1
        return pair
