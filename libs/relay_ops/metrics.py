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
DEAD_LETTERS = Gauge("relay_dead_letter_messages", "Commands parked in the dead-letter queue (each service samples it)")
READY = Gauge("relay_ready", "1 while a readiness check passes, evaluated at every /readyz and /metrics", ["check"])


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
                # robust=False: a robust channel answers a repeated passive declare from its cache, stale
                declared = await probe.declare_queue(name, passive=True, robust=False)
                CONSUMER_LAG.labels(service, name).set(declared.declaration_result.message_count or 0)
            except Exception:
                logging.getLogger(__name__).warning("lag sample of %s failed", name)
        await asyncio.sleep(every)


async def sample_dead_letters(broker: Any, *, every: float = 5.0) -> None:
    """Keep DEAD_LETTERS current from `broker`'s dead-letter queue, on a probe channel of its own that
    is replaced when a failed passive declare (the queue deleted by hand) closes it."""
    probe = None
    while True:
        try:
            if probe is None or probe.is_closed:
                probe = await broker.connection.channel()
            declared = await probe.declare_queue(broker.topology.dead_letter_queue, passive=True, robust=False)
            DEAD_LETTERS.set(declared.declaration_result.message_count or 0)
        except Exception:
            logging.getLogger(__name__).warning("dead-letter sample failed")
        await asyncio.sleep(every)
