"""SPEC §7: UNAVAILABLE means "not applied". A command past its deadline is refused before any write."""

from __future__ import annotations

from relay_contracts.envelope import Envelope
from relay_contracts.errors import ErrorCode, RelayError


def expired_error(env: Envelope) -> RelayError:
    return RelayError(ErrorCode.UNAVAILABLE, f"{env.type} expired before it was applied; nothing was changed")


def refuse_if_expired(env: Envelope) -> None:
    """Call right before a command's first write: its caller may already have been answered UNAVAILABLE."""
    if env.expired():
        raise expired_error(env)
