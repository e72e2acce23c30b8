"""Scale-out benchmark: accepted sends/s with 1 and with 2 instances of the message service.

A private stack per run (two gateway replicas, the embedded MongoDB-wire server, the message
service N times); `--posters` REST clients post into `--chats` support chats (two posters per chat
at the least, alternating gateways) for `--seconds`; each waits for its 201 before the next send.
Prints accepted sends/s, p50/p99 REST round trip and the CPU each role burnt (cores busy), and
writes bench/reports/scaleout.json.
Measured, never asserted. Loopback only, bounded in time.

    .venv/bin/python -m bench.scaleout --instances 1 2 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from relay_auth import mint_token
from relay_config import DEV_JWT_SECRET
from relay_devstack import Stack, StackConfig
from relay_devstack.stack import free_port
from relay_sdk import RelayClient

from bench.procs import cpu_seconds

REPORTS = Path(__file__).parent / "reports"


async def run(instances: int, chats: int, posters: int, seconds: float) -> dict[str, Any]:
    config = StackConfig(
        drop_topology=True,
        instance=f"b-scale-{uuid.uuid4().hex[:8]}",
        gateway_ports=[free_port(), free_port()],
        services=("message",),
        service_instances=instances,
        log_dir=tempfile.mkdtemp(prefix="relay-scaleout-"),
        env={"JWT_SECRET": DEV_JWT_SECRET, "RATE_LIMITS": "message=off,rest_write=off", "LOG_LEVEL": "WARNING"},
    )
    with Stack(config) as stack:
        token = mint_token(DEV_JWT_SECRET, user_id="bench-visitor", roles=["visitor"], tenant="bench")
        clients = [RelayClient(url, token=token) for url in stack.gateway_urls]
        chat_ids = [(await clients[0].open_chat(f"bench {i}"))["chatId"] for i in range(chats)]
        latencies: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def poster(n: int) -> None:
            client, chat_id = clients[n % len(clients)], chat_ids[n % len(chat_ids)]
            k = 0
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                await client.post("/v2/messages", {"chatId": chat_id, "content": f"p{n}-{k}"}, expect=201)
                latencies.append(time.perf_counter() - started)
                k += 1

        roles = {
            "database": ["mongo"],
            "message": stack.instances("message"),
            "gateways": [f"gateway-{i}" for i in range(len(stack.gateway_urls))],
        }
        pids = {role: [stack.procs[name].popen.pid for name in names] for role, names in roles.items()}
        cpu_before = {role: cpu_seconds(p) for role, p in pids.items()}
        began = time.perf_counter()
        await asyncio.gather(*(poster(n) for n in range(posters)))
        elapsed = time.perf_counter() - began
        cpu_share = {role: round((cpu_seconds(p) - cpu_before[role]) / elapsed, 2) for role, p in pids.items()}
        for client in clients:
            await client.close()
    ordered = sorted(latencies)
    return {
        "instances": instances,
        "chats": chats,
        "posters": posters,
        "seconds": round(elapsed, 2),
        "accepted": len(latencies),
        "accepted_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
        "cpu_cores_busy": cpu_share,  # CPU seconds per second of each role over the run
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chats", type=int, default=8)
    parser.add_argument("--posters", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    results = []
    for n in args.instances:
        result = await run(n, args.chats, args.posters, args.seconds)
        print(json.dumps(result), flush=True)
        results.append(result)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "scaleout.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
