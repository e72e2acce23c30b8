"""The claims contract in memory, and the test-only commit delays."""

from __future__ import annotations

from relay_contracts.claims import APPLIED, CANCELLED, MemoryClaims, Want
from relay_contracts.deadline import CommitDelays


async def test_the_first_claim_wins_and_a_late_command_goes_only_if_claimed_before():
    claims = MemoryClaims()
    assert await claims.cancel("a") == CANCELLED
    assert await claims.claim([Want("a", True), Want("b", True), Want("c", False)]) == [False, True, False]
    assert await claims.cancel("b") == APPLIED  # the handler came first: the caller waits for the reply
    assert await claims.claim([Want("b", False)]) == [True]  # its redelivery, past the deadline


def test_commit_delays_cycle_and_default_to_none():
    assert not CommitDelays() and CommitDelays().next() == (0.0, 0.0)
    delays = CommitDelays("0/0, 0.1/3,3.5")
    assert [delays.next() for _ in range(4)] == [(0.0, 0.0), (0.1, 3.0), (3.5, 0.0), (0.0, 0.0)]
