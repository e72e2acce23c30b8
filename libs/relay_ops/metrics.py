"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

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
