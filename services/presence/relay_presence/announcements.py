"""`presence.changed`: what one user's transition announces to the tenant's gateways."""

from __future__ import annotations

from relay_contracts import Envelope, utcnow_iso
from relay_contracts import presence as p
from relay_contracts.routing import event_key
from relay_log import get_logger

from relay_presence import domain
from relay_presence.metrics import TRANSITIONS

log = get_logger(__name__)


def announcement(
    state: domain.UserPresence, change: domain.Change, count: int, correlation_id: str
) -> tuple[str, Envelope]:
    """`presence.changed` for one transition: its routing key and event."""
    data = {
        "userId": state.user_id,
        # announced to other users (who may see it: the gateways' presence_audience.py): no email address
        "user": {**{k: v for k, v in state.user.items() if k != "email"}, "userId": state.user_id},
        "status": change.status,
        "previous": change.previous,
        "online": change.status != domain.OFFLINE,
        "connectedSince": domain.iso(state.connected_since),
        "lastSeen": domain.iso(state.last_seen),
        "activeUsersCount": count,
        "timestamp": utcnow_iso(),
    }
    event = Envelope(type=p.CHANGED, tenant=state.tenant, correlationId=correlation_id, data=data)
    return event_key(state.tenant, "tenant", "_", p.CHANGED), event


def announced(state: domain.UserPresence, change: domain.Change, count: int) -> None:
    TRANSITIONS.labels(change.previous, change.status).inc()
    log.info("presence.changed", user_id=state.user_id, tenant=state.tenant, status=change.status, active=count)
