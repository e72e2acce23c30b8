"""The one envelope every command and event travels in (ARCHITECTURE.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ulid import ULID


def new_id() -> str:
    """Unique, lexicographically sortable by creation time (ULID)."""
    return str(ULID())


def utcnow_iso() -> str:
    return iso(datetime.now(UTC))


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    userId: str
    roles: tuple[str, ...] = ()
    username: str | None = None
    avatar: str | None = None  # the token's `avatar` claim: seed-000 shows it on what the user did


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=new_id)
    type: str
    version: int = 1
    tenant: str
    occurredAt: str = Field(default_factory=utcnow_iso)
    correlationId: str
    causationId: str | None = None
    actor: Actor | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    # a command whose caller waits: after this instant the caller has been told UNAVAILABLE ("not applied"),
    # so no handler may apply it any more (SPEC §7)
    expiresAt: str | None = None

    def expiring_in(self, seconds: float) -> Envelope:
        """This command with a deadline `seconds` from now."""
        return self.model_copy(update={"expiresAt": iso(datetime.now(UTC) + timedelta(seconds=seconds))})

    def expired(self, now: datetime | None = None) -> bool:
        if self.expiresAt is None:
            return False
        deadline = datetime.fromisoformat(self.expiresAt.replace("Z", "+00:00"))
        return (now or datetime.now(UTC)) >= deadline

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> Envelope:
        return cls.model_validate_json(body)

    def caused(self, type_: str, data: dict[str, Any], *, id: str | None = None) -> Envelope:
        """An event or command caused by this one: same tenant, actor and correlation id."""
        return Envelope(
            id=id or new_id(),
            type=type_,
            tenant=self.tenant,
            correlationId=self.correlationId,
            causationId=self.id,
            actor=self.actor,
            data=data,
        )
