"""Gateway metrics (Prometheus)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("relay_gateway_connections", "Connected sockets on this replica", ["replica", "namespace"])
EVENTS_IN = Counter("relay_gateway_events_in_total", "Socket events received", ["namespace", "event"])
EVENTS_OUT = Counter("relay_gateway_events_out_total", "Events emitted to local rooms", ["namespace", "event"])
DELIVERY_SECONDS = Histogram(
    "relay_gateway_delivery_seconds",
    "From the event's occurredAt to its emission on this replica",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BINDINGS = Gauge("relay_gateway_bindings", "Event-queue bindings held for local interest", ["replica"])
ROOMS = Gauge("relay_gateway_rooms", "Rooms with local members", ["replica", "namespace"])
ADAPTER_LISTENER_LOST = Counter(
    "relay_gateway_adapter_listener_lost_total", "Times the Redis adapter's subscription was lost (then retried)"
)
SLOW_CONSUMERS = Counter(
    "relay_gateway_slow_consumers_total", "Sockets disconnected because their unsent bytes passed WS_SEND_BUFFER_BYTES"
)
DUPLICATES_DROPPED = Counter("relay_gateway_duplicate_events_total", "Redelivered events dropped by id")
COMMANDS = Counter("relay_gateway_commands_total", "Commands sent to the services", ["type"])
COMMAND_ROUND_TRIP = Histogram(
    "relay_gateway_command_seconds",
    "From sending a command to its service's answer, as the gateway waits for it",
    ["type", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
