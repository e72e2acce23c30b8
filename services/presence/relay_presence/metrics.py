"""Presence metrics (Prometheus)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TRANSITIONS = Counter("relay_presence_transitions_total", "Announced user transitions", ["previous", "status"])
REAPED = Counter("relay_presence_reaped_sockets_total", "Sockets reaped from dead gateway replicas")
REPLICAS = Gauge("relay_presence_replicas", "Gateway incarnations with a recent heartbeat")
SWEEP_SECONDS = Gauge("relay_presence_sweep_seconds", "Duration of the last sweep (reaping, grace, idle)")
