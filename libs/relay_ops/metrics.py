"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

COMMAND_SECONDS = Histogram(
    "relay_command_seconds",
    "Time to handle one command",
    ["service", "type", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ERRORS = Counter("relay_errors_total", "Refusals and failures by error code", ["service", "code"])
CONSUMER_LAG = Gauge("relay_consumer_lag_messages", "Messages waiting in a consumed queue", ["service", "queue"])


def command_observer(service: str):  # type: ignore[no-untyped-def]
    def observe(command_type: str, seconds: float, outcome: str) -> None:
        COMMAND_SECONDS.labels(service, command_type, outcome).observe(seconds)
        if outcome != "ok":
            ERRORS.labels(service, outcome).inc()

    return observe


async def sample_consumer_lag(connection: Any, service: str, queue_names: list[str], *, every: float = 5.0) -> None:
    """Keep CONSUMER_LAG of each of `queue_names` current, probing on a channel of its own (a failed
    passive declare closes its channel; a new one is opened then)."""
    probe = None
    while True:
        for name in queue_names:
            try:
                if probe is None or probe.is_closed:
                    probe = await connection.channel()
                declared = await probe.declare_queue(name, passive=True)
                CONSUMER_LAG.labels(service, name).set(declared.declaration_result.message_count or 0)
            except Exception:
                logging.getLogger(__name__).warning("lag sample of %s failed", name)
        await asyncio.sleep(every)
