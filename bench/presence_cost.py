"""Cost of one presence transition at tenant scale (1,000 and 10,000 users), in-process against the real Redis.

Ten thousand real sockets do not fit on the shared 2-core box, so this measures the two halves of a
transition where they run, without the network in between:

- presence service: the real `presence.connect` handler on the real Redis (private key prefix), from the
  command to the `presence.changed` it publishes;
- gateway: the real `EventDelivery.deliver` (render per dialect, emit to the entitled rooms) through the
  gateway's fan-out manager (`FanoutEmit`) on a real python-socketio server whose N sockets are registered
  in it; each socket's WebSocket transport is a frame counter, so a delivery costs its room resolution and
  frame write, not the kernel's send (bench/fanout measures the whole path).

Each user of the tenant has one socket on `/`. Scenarios: every socket speaks seed-001 (support agents: no
presence events) but `--watchers` of them (seed-002 dashboards); and every socket speaks seed-002 (all entitled).
Writes bench/reports/presence_cost.json. Measured, never asserted.

    .venv/bin/python -m bench.presence_cost --users 1000 10000 --transitions 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import socketio
from redis.asyncio import Redis
from relay_contracts import Envelope
from relay_contracts import presence as p
from relay_devstack.stack import drop_keys
from relay_gateway.bootstrap import DIALECTS
from relay_gateway.delivery import EventDelivery
from relay_gateway.fanout import FanoutEmit
from relay_gateway.rooms import presence_room, scoped
from relay_log import configure_logging
from relay_presence.adapters.store import PresenceStore
from relay_presence.handlers import Deps, connect

REPORTS = Path(__file__).parent / "reports"
TENANT = "cost"
REDIS_URL = "redis://127.0.0.1:6379/0"


class CountingWriter:
    """Stands in for a WebSocket transport: counts the frames the gateway's fan-out writes to it."""

    frames = 0

    def write(self, frame: bytes) -> None:
        CountingWriter.frames += 1


class CountingSocket:
    closed = False
    writer = CountingWriter()


def connect_command(user_id: str, replica: str) -> Envelope:
    user = {"userId": user_id, "roles": ["agent"]}
    data = {"sid": f"sid-{user_id}", "replica": replica, "user": user}
    return Envelope(type=p.CONNECT, tenant=TENANT, correlationId="c", actor=user, data=data)


async def scenario(redis: Redis, users: int, entitled: int, transitions: int) -> dict[str, Any]:
    instance = f"bench-cost-{uuid.uuid4().hex[:6]}"
    published: list[Envelope] = []

    async def publish(_: str, event: Envelope) -> None:
        published.append(event)

    deps = Deps(PresenceStore(redis, instance), publish, grace_seconds=0.0)
    # the gateway's own manager class (the fan-out fast path), without the Redis adapter above it
    manager = FanoutEmit()
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager)
    delivery = EventDelivery(sio, None, "cost", DIALECTS)  # type: ignore[arg-type]
    manager.initialize()
    replica = "cost-gw/1"
    for i in range(users):  # the tenant: N users online, one socket each
        sio.eio.sockets[f"eio-{i}"] = CountingSocket()
        sid = await manager.connect(f"eio-{i}", "/")
        if i < entitled:
            await manager.enter_room(sid, "/", scoped(TENANT, presence_room("users")))
        await connect(connect_command(f"u{i}", replica), deps)
    published.clear()

    service_cpu = gateway_cpu = 0.0
    CountingWriter.frames = 0
    for n in range(transitions):  # new users coming online in a tenant of `users`
        started = time.process_time()
        await connect(connect_command(f"new{n}", replica), deps)
        service_cpu += time.process_time() - started
        (event,) = published
        published.clear()
        started = time.process_time()
        await delivery.deliver(event)
        gateway_cpu += time.process_time() - started
    drop_keys(REDIS_URL, instance)
    return {
        "users": users,
        "entitled_sockets": entitled,
        "transitions": transitions,
        "deliveries_per_transition": round(CountingWriter.frames / transitions, 1),
        "presence_service_cpu_ms_per_transition": round(service_cpu * 1000 / transitions, 3),
        "gateway_cpu_ms_per_transition": round(gateway_cpu * 1000 / transitions, 3),
        "gateway_cpu_us_per_delivery": (
            round(gateway_cpu * 1e6 / CountingWriter.frames, 2) if CountingWriter.frames else None
        ),
    }


async def run(sizes: list[int], watchers: int, transitions: int) -> list[dict[str, Any]]:
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    results = []
    try:
        for users in sizes:
            for entitled in (watchers, users):
                result = await scenario(redis, users, entitled, transitions)
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        await redis.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--watchers", type=int, default=10, help="seed-002 sockets among support agents")
    parser.add_argument("--transitions", type=int, default=200)
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    configure_logging("bench", "WARNING", "console")
    results = asyncio.run(run(args.users, args.watchers, args.transitions))
    REPORTS.mkdir(exist_ok=True)
    path = REPORTS / "presence_cost.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored[args.label] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": results}
    path.write_text(json.dumps(stored, indent=2) + "\n")


if __name__ == "__main__":
    main()
