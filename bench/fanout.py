"""Fan-out benchmark: N sockets over two gateway replicas in one chat, messages posted at a fixed rate.

Reports delivered events/s, p50/p99 end-to-end latency (REST post → socket receipt) and gateway
memory per connection, and writes them to bench/reports/fanout.json (+ a line in fanout.md).
Measured, not asserted. Loopback only, bounded in count and time.

    .venv/bin/python -m bench.fanout --clients 200 --rate 20 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path

from relay_auth import mint_token
from relay_config import DEV_JWT_SECRET
from relay_devstack import Stack, StackConfig
from relay_devstack.stack import free_port
from relay_sdk import RelayClient, RelaySocket

from bench.stats import percentile

REPORTS = Path(__file__).parent / "reports"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def run(clients: int, rate: float, seconds: float, stack: Stack) -> dict:
    token = lambda user, role: mint_token(DEV_JWT_SECRET, user_id=user, roles=[role], tenant="bench")  # noqa: E731
    urls = stack.gateway_urls
    visitor = RelayClient(urls[0], token=token("bench-visitor", "visitor"))
    chat_id = (await visitor.post("/v2/chats", {"subject": "bench"}))["chatId"]
    gateway_pids = [p.popen.pid for name, p in stack.procs.items() if name.startswith("gateway")]
    rss_before = sum(rss_bytes(pid) for pid in gateway_pids)

    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    delivered = 0
    expected = int(rate * seconds) * clients
    all_delivered = asyncio.Event()

    def on_message(message: dict) -> None:
        nonlocal delivered
        delivered += 1
        if delivered >= expected:
            all_delivered.set()
        started = sent_at.get(message.get("clientMessageId") or "")
        if started is not None:
            latencies.append(time.perf_counter() - started)

    sockets: list[RelaySocket] = []
    for i in range(clients):
        # agents may join any support chat of their tenant: one agent identity per socket
        sock = RelaySocket(urls[i % len(urls)], auth={"token": token(f"bench-agent-{i}", "agent")})
        sock.sio.on("message:new", on_message)
        sockets.append(sock)
    for batch in range(0, clients, 50):
        await asyncio.gather(*(s.connect() for s in sockets[batch : batch + 50]))
    await asyncio.gather(*(s.call("chat:join", {"chatId": chat_id}) for s in sockets))
    await asyncio.sleep(1)
    rss_after = sum(rss_bytes(pid) for pid in gateway_pids)

    total = int(rate * seconds)
    interval = 1.0 / rate
    started = time.perf_counter()
    posts = []
    for n in range(total):
        client_id = uuid.uuid4().hex
        sent_at[client_id] = time.perf_counter()
        body = {"chatId": chat_id, "content": f"bench {n}", "clientMessageId": client_id}
        posts.append(asyncio.create_task(visitor.post("/v2/messages", body)))
        await asyncio.sleep(max(0.0, started + (n + 1) * interval - time.perf_counter()))
    await asyncio.gather(*posts)
    try:
        await asyncio.wait_for(all_delivered.wait(), 30)
    except TimeoutError:
        pass  # reported as lost
    elapsed = time.perf_counter() - started

    for s in sockets:
        await s.close()
    await visitor.close()
    return {
        "clients": clients,
        "replicas": len(urls),
        "rate_per_s": rate,
        "messages": total,
        "expected_deliveries": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        "delivered_per_s": round(delivered / elapsed, 1),
        "latency_p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "latency_mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "gateway_rss_per_connection_kib": round((rss_after - rss_before) / clients / 1024, 1),
        "elapsed_s": round(elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="messages posted per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    config = StackConfig(
        instance=f"bench-{uuid.uuid4().hex[:6]}",
        gateway_ports=[free_port(), free_port()],
        # one visitor posts every message and every agent joins at once: lift the per-user limits
        env={
            "LOG_LEVEL": "WARNING",
            "JWT_SECRET": DEV_JWT_SECRET,
            "RATE_LIMITS": "message=off,rest_write=off,join=off",
        },
        log_dir=str(REPORTS / "logs"),
    )
    with Stack(config) as stack:
        result = asyncio.run(run(args.clients, args.rate, args.seconds, stack))
    result["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "fanout.json").write_text(json.dumps(result, indent=2) + "\n")
    with (REPORTS / "fanout.md").open("a") as md:
        md.write(
            f"- {result['when']}: {result['clients']} sockets / {result['replicas']} replicas, "
            f"{result['rate_per_s']} msg/s for {args.seconds}s → {result['delivered_per_s']} deliveries/s, "
            f"p50 {result['latency_p50_ms']} ms, p99 {result['latency_p99_ms']} ms, lost {result['lost']}, "
            f"{result['gateway_rss_per_connection_kib']} KiB RSS/connection\n"
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
