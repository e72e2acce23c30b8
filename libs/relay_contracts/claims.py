"""SPEC §7 under overload: who decides a command's fate when its caller's timer and its handler's commit race.

A caller that waits (RPC) and a handler that writes claim the command's id, atomically, in a store both see
(Redis in a deployment: `relay_redis.claims`). The handler claims `applied` right before its first write;
the caller's timer, when it fires without a reply, claims `cancelled`. Both claims are "set if absent", so
exactly one wins:

- the caller won: it answers UNAVAILABLE, and the handler, whose claim finds `cancelled`, writes nothing;
- the handler won: the caller does not answer UNAVAILABLE but keeps waiting for the reply, which is coming
  (the command is in a durable queue and its write is idempotent by command id: a handler that dies after
  its claim has the command redelivered, finds its own `applied` and applies it, once).

A store that cannot be reached decides nothing: the handler writes nothing (UNAVAILABLE, true), and a caller
that cannot learn the fate never answers UNAVAILABLE for it (`relay_broker.rpc`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from relay_contracts.envelope import Envelope

APPLIED = "applied"
CANCELLED = "cancelled"
CLAIM_TTL_SECONDS = 120.0  # longer than a command can wait in its queue plus its caller's longest wait


@dataclass(frozen=True)
class Want:
    """A handler's wish for one command: `start` when it is still in time to begin its write; a command past
    its deadline (`start` False) goes ahead only if a handler already claimed it (its redelivery)."""

    command_id: str
    start: bool


class Claims:
    """The claims store. Implementations answer in one round trip per call, whatever the number of commands."""

    async def claim(self, wants: Sequence[Want]) -> list[bool]:
        """Right before writing: for each command, True when this handler may write it (it holds `applied`,
        just now or from an earlier delivery), False when it must write nothing (cancelled, or too late and
        never claimed). Raises RelayError(UNAVAILABLE) when the store cannot be reached: nothing may be written."""
        raise NotImplementedError

    async def cancel(self, command_id: str) -> str:
        """The caller's timer fired: claim `cancelled` unless a handler claimed first. Returns the fate that
        holds (APPLIED or CANCELLED). Raises when the store cannot be reached (the fate is unknown)."""
        raise NotImplementedError


class MemoryClaims(Claims):
    """Claims held in this process: for unit tests and a caller and handlers sharing one process."""

    def __init__(self) -> None:
        self.fates: dict[str, str] = {}

    async def claim(self, wants: Sequence[Want]) -> list[bool]:
        go = []
        for want in wants:
            if want.start:
                self.fates.setdefault(want.command_id, APPLIED)
            go.append(self.fates.get(want.command_id) == APPLIED)
        return go

    async def cancel(self, command_id: str) -> str:
        return self.fates.setdefault(command_id, CANCELLED)


def needs_claim(env: Envelope) -> bool:
    """Only a command with a caller waiting on a timer (it carries a deadline) can be cancelled by that caller;
    a fire-and-forget command is applied whenever its service takes it, with no claim to pay for."""
    return env.expiresAt is not None
