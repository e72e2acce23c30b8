"""Wire contracts shared by every Relay process: the envelope, error codes, commands, events."""

from relay_contracts.envelope import Envelope, new_id, utcnow_iso
from relay_contracts.errors import ErrorCode, RelayError

__all__ = ["Envelope", "ErrorCode", "RelayError", "new_id", "utcnow_iso"]
