"""The gateway's way to the services: commands over the broker, answered by request/reply."""

from __future__ import annotations

import time
from typing import Any

from relay_auth import Principal
from relay_broker import RpcClient
from relay_contracts import Envelope, RelayError
from relay_contracts.envelope import Actor
from relay_log import current_correlation_id, new_correlation_id

from relay_gateway import metrics


def envelope_for(principal: Principal, command_type: str, data: dict[str, Any]) -> Envelope:
    return Envelope(
        type=command_type,
        tenant=principal.tenant,
        correlationId=current_correlation_id() or new_correlation_id(),
        actor=Actor(
            userId=principal.user_id,
            roles=tuple(sorted(principal.roles)),
            username=principal.username,
            avatar=principal.avatar,
        ),
        data=data,
    )


class CommandBus:
    def __init__(self, rpc: RpcClient) -> None:
        self._rpc = rpc

    async def call(self, principal: Principal, command_type: str, data: dict[str, Any]) -> Any:
        """Run a command as `principal`; returns the service's answer or raises its RelayError."""
        return await self.call_envelope(envelope_for(principal, command_type, data))

    async def send(self, principal: Principal, command_type: str, data: dict[str, Any]) -> None:
        """Fire a command as `principal` without waiting for its answer."""
        await self._rpc.send(envelope_for(principal, command_type, data))

    async def send_envelope(self, envelope: Envelope) -> None:
        await self._rpc.send(envelope)

    async def call_envelope(self, envelope: Envelope, *, timeout: float | None = None) -> Any:
        metrics.COMMANDS.labels(envelope.type).inc()
        started, outcome = time.perf_counter(), "ok"
        try:
            return await self._rpc.call(envelope, timeout=timeout)
        except RelayError as exc:
            outcome = exc.code.value
            raise
        finally:
            metrics.COMMAND_ROUND_TRIP.labels(envelope.type, outcome).observe(time.perf_counter() - started)
