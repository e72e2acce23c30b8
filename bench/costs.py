"""Per-unit costs for docs/capacity.md: Redis commands and database commands per event, Redis memory
per connection and per session, event-queue bindings per replica, CPU per message and per delivery.

`python -m bench.costs --sockets 40 --messages 200` starts a private Relay whose Redis is a private
redis-server (its INFO commandstats count only this run) and whose MongoDB-wire server sits behind a
counting proxy (bench/wire_proxy.py). Each phase (idle, connect, messages, typing, disconnect) is
measured as a difference of counters, less the idle rate over the phase's duration. Writes
bench/reports/costs.json and a line in bench/reports/costs.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aio_pika
import httpx
from redis.asyncio import Redis
from relay_auth import mint_token
from relay_config import DEV_JWT_SECRET
from relay_devstack import Stack, StackConfig
from relay_devstack.redis_server import RedisServer
from relay_devstack.stack import free_port
from relay_gateway.ratelimit import SLIDING_WINDOW
from relay_sdk import RelayClient, RelaySocket

from bench.procs import AMQP_URL, cpu_seconds, rss_bytes
from bench.wire_proxy import MONITORING, CountingMongoProxy

REPORTS = Path(__file__).parent / "reports"
TENANT = "costs"
# limits stay on (their Redis commands are part of every request's cost) but never refuse this run
HIGH_LIMITS = "message=100000/1s,rest_write=100000/1s,typing=100000/1s,join=100000/1s"


class RedisMonitor:
    """Counts what clients send Redis (MONITOR), apart from what Lua scripts run inside Redis: INFO
    commandstats counts both alike, and a script's inner commands are no extra round trips."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.requests: Counter[str] = Counter()
        self.in_scripts = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._count(ready))
        await ready.wait()

    async def _count(self, ready: asyncio.Event) -> None:
        async with self.redis.monitor() as monitor:
            ready.set()
            while True:
                seen = await monitor.next_command()
                name = seen["command"].split(" ", 1)[0].lower()
                if seen["client_type"] == "lua":
                    self.in_scripts += 1
                elif name != "info":  # this benchmark's own reads
                    self.requests[name] += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Counters:
    """Redis requests, database commands and CPU seconds of the stack, read together."""

    def __init__(self, redis: Redis, monitor: RedisMonitor, proxy: CountingMongoProxy, stack: Stack) -> None:
        self.redis, self.monitor, self.proxy, self.stack = redis, monitor, proxy, stack

    def pids(self, prefix: str) -> list[int]:
        return [p.popen.pid for name, p in self.stack.procs.items() if name.startswith(prefix)]

    async def read(self) -> dict[str, Any]:
        await asyncio.sleep(0.2)  # let MONITOR catch up with what happened before this read
        commands, documents = self.proxy.snapshot()
        return {
            "at": time.monotonic(),
            "redis": Counter(self.monitor.requests),
            "redis_in_scripts": Counter({"commands": self.monitor.in_scripts}),
            "db": Counter({f"{c} {coll}".strip(): n for (c, coll), n in commands.items() if c not in MONITORING}),
            "db_docs": Counter({f"{c} {coll}".strip(): n for (c, coll), n in documents.items() if n}),
            "cpu_gateways": cpu_seconds(self.pids("gateway")),
            "cpu_gateway_0": cpu_seconds(self.pids("gateway-0")),
            "cpu_gateway_1": cpu_seconds(self.pids("gateway-1")),
            "cpu_message": cpu_seconds(self.pids("message")),
            "redis_memory": (await self.redis.info("memory"))["used_memory_dataset"],  # not client buffers
            "gateway_rss": sum(rss_bytes(pid) for pid in self.pids("gateway")),
        }


def delta(before: dict[str, Any], after: dict[str, Any], idle: dict[str, Any] | None) -> dict[str, Any]:
    """What a phase cost: counters after less before, less what idling would have cost meanwhile."""
    seconds = after["at"] - before["at"]
    out: dict[str, Any] = {"seconds": round(seconds, 2)}
    for key in ("redis", "redis_in_scripts", "db", "db_docs"):
        diff = Counter(after[key])
        diff.subtract(before[key])
        if idle is not None:
            for name, rate in idle[key].items():
                diff[name] -= rate * seconds
        out[key] = {k: round(v, 1) for k, v in diff.items() if v >= 0.5}
    for key in ("cpu_gateways", "cpu_gateway_0", "cpu_gateway_1", "cpu_message"):
        out[key] = max(0.0, after[key] - before[key] - (idle[key] * seconds if idle else 0.0))
    out["redis_memory"] = after["redis_memory"] - before["redis_memory"]
    out["gateway_rss"] = after["gateway_rss"] - before["gateway_rss"]
    return out


def per(phase: dict[str, Any], units: float) -> dict[str, Any]:
    return {
        "redis_requests": round(sum(phase["redis"].values()) / units, 2),
        "redis_by_command": {k: round(v / units, 2) for k, v in sorted(phase["redis"].items())},
        "redis_commands_inside_scripts": round(phase["redis_in_scripts"].get("commands", 0) / units, 2),
        "db_commands": round(sum(phase["db"].values()) / units, 2),
        "db_by_command": {k: round(v / units, 2) for k, v in sorted(phase["db"].items())},
        "db_documents_written": {k: round(v / units, 2) for k, v in sorted(phase["db_docs"].items())},
    }


async def gateway_gauge(urls: list[str], name: str) -> list[float]:
    values = []
    async with httpx.AsyncClient() as http:
        for url in urls:
            text = (await http.get(f"{url}/metrics")).text
            values.append(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)))
    return values


async def wait_until(condition, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the stack did not settle")
        await asyncio.sleep(0.25)


async def active_count(sock: RelaySocket) -> int:
    answer = await sock.call("get-active-users")
    return int(answer.get("count", -1))


async def measure(stack: Stack, counters: Counters, args: argparse.Namespace) -> dict[str, Any]:
    urls = stack.gateway_urls
    report: dict[str, Any] = {"sockets": args.sockets, "messages": args.messages, "typing": args.typing}
    report["bindings_empty"] = await gateway_gauge(urls, "relay_gateway_bindings{")

    # idle: what the running stack costs per second with nobody connected
    start = await counters.read()
    await asyncio.sleep(args.idle_seconds)
    end = await counters.read()
    idle_phase = delta(start, end, None)
    seconds = idle_phase["seconds"]
    kinds = ("redis", "redis_in_scripts", "db", "db_docs")
    idle = {k: Counter({n: v / seconds for n, v in idle_phase[k].items()}) for k in kinds}
    idle |= {k: idle_phase[k] / seconds for k in ("cpu_gateways", "cpu_gateway_0", "cpu_gateway_1", "cpu_message")}
    report["idle_per_second"] = {
        "redis_requests": round(sum(idle["redis"].values()), 2),
        "redis_by_command": {k: round(v, 2) for k, v in sorted(idle["redis"].items())},
        "db_commands": round(sum(idle["db"].values()), 2),
    }

    visitor = RelayClient(urls[0], token=mint_token(DEV_JWT_SECRET, user_id="v", roles=["visitor"], tenant=TENANT))
    chat_id = (await visitor.open_chat())["chatId"]

    # connect: each socket a distinct agent, alternating replicas, joining the one chat
    before = await counters.read()
    sockets = []
    for n in range(args.sockets):
        token = mint_token(DEV_JWT_SECRET, user_id=f"agent-{n}", roles=["commercial"], tenant=TENANT)
        sock = await RelaySocket(urls[n % len(urls)], auth={"token": token}).connect()
        await sock.join(chat_id)
        sockets.append(sock)
    await wait_until(lambda: _equals(active_count(sockets[0]), args.sockets))
    phase = delta(before, await counters.read(), idle)
    report["per_connection"] = per(phase, args.sockets) | {
        "redis_memory_bytes": round(phase["redis_memory"] / args.sockets),
        "gateway_rss_kib": round(phase["gateway_rss"] / args.sockets / 1024, 1),
    }
    report["bindings_connected"] = await gateway_gauge(urls, "relay_gateway_bindings{")

    # messages: REST sends into the chat, every socket receives every one
    before = await counters.read()
    started = time.monotonic()
    for n in range(args.messages):
        await visitor.send(chat_id, f"m{n}", clientMessageId=f"c{n}")
        pause = started + (n + 1) / args.rate - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
    for sock in sockets:
        await sock.wait_for("message:new", count=args.messages, timeout=120)
    phase = delta(before, await counters.read(), idle)
    deliveries = args.messages * args.sockets
    report["per_message"] = per(phase, args.messages) | {
        "message_service_cpu_us": round(phase["cpu_message"] / args.messages * 1e6, 1),
    }
    report["gateway_cpu_us_per_delivery"] = round(phase["cpu_gateways"] / deliveries * 1e6, 1)
    # both replicas deliver to half the sockets; replica 0 also takes the REST sends: the difference is ingest
    on_one = deliveries / len(urls)
    report["gateway_cpu_us_per_delivery_fanout_only"] = round(phase["cpu_gateway_1"] / on_one * 1e6, 1)
    ingest = phase["cpu_gateway_0"] - phase["cpu_gateway_1"]
    report["gateway_cpu_us_per_rest_send"] = round(max(0.0, ingest) / args.messages * 1e6, 1)

    # typing: relayed across replicas by the Socket.IO Redis adapter
    before = await counters.read()
    pairs = max(1, args.typing // 2)
    for _ in range(pairs):  # start and stop alternately: each is relayed (a repeated start is a refresh)
        await sockets[0].call("typing:start", {"chatId": chat_id})
        await sockets[0].call("typing:stop", {"chatId": chat_id})
    await sockets[1].wait_for("user:stop-typing", count=pairs, timeout=60)
    report["per_typing"] = per(delta(before, await counters.read(), idle), 2 * pairs)

    # sessions: what a cookie session holds in Redis
    before = await counters.read()
    async with httpx.AsyncClient(base_url=urls[0]) as browser:
        for _ in range(args.sessions):
            await browser.post("/v2/visitor/session", json={"tenantId": TENANT})
            browser.cookies.clear()
    phase = delta(before, await counters.read(), idle)
    memory = {"redis_memory_bytes": round(phase["redis_memory"] / args.sessions)}
    report["per_session"] = per(phase, args.sessions) | memory

    # disconnect: presence transitions back to offline (after the reconnect grace)
    before = await counters.read()
    watcher = sockets.pop()
    for sock in sockets:
        await sock.close()
    await wait_until(lambda: _equals(active_count(watcher), 1))
    report["per_disconnect"] = per(delta(before, await counters.read(), idle), len(sockets))
    await watcher.close()
    await visitor.close()
    return report


async def _equals(value, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await value == expected)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    redis_server = RedisServer().start()
    mongo = Stack(StackConfig(gateway_ports=[], services=())).start()
    proxy = CountingMongoProxy("127.0.0.1", int(mongo.mongo_url.split(":")[2].split("/")[0]))
    proxy_port = await proxy.start()
    instance = f"costs-{uuid.uuid4().hex[:8]}"
    config = StackConfig(
        drop_topology=True,
        instance=instance,
        gateway_ports=[free_port(), free_port()],
        redis_url=redis_server.url,
        mongo_url=f"mongodb://127.0.0.1:{proxy_port}/?directConnection=true",
        env={"LOG_LEVEL": "WARNING", "JWT_SECRET": DEV_JWT_SECRET, "RATE_LIMITS": HIGH_LIMITS},
        log_dir=str(REPORTS / f"costs-logs.tmp/{instance}"),
    )
    stack = await asyncio.to_thread(lambda: Stack(config).start())
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    monitor = RedisMonitor(redis)
    await monitor.start()
    try:
        report = await measure(stack, Counters(redis, monitor, proxy, stack), args)
    finally:
        await monitor.stop()
        await redis.aclose()
        await asyncio.to_thread(stack.stop)
        await proxy.close()
        mongo.stop()
        redis_server.remove()
    report["redis_capacity"] = await asyncio.to_thread(redis_capacity)
    report["broker_capacity"] = await broker_capacity()
    report["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report["note"] = "2-core machine shared with other engineers' tests and benchmarks while measured"
    return report


async def broker_capacity(binds: int = 2000, messages: int = 20_000) -> dict[str, float]:
    """What the (shared, single-node) RabbitMQ does for one client connection: queue bindings a
    second (a gateway binds as local interest appears) and persistent messages a second published
    with confirms into a quorum queue, 200 in flight."""
    name = f"costs-broker-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
        queue = await channel.declare_queue(exclusive=True)
        started = time.perf_counter()
        for n in range(binds):
            await queue.bind(exchange, f"t.conv.{n}.#")
        bind_rate = binds / (time.perf_counter() - started)
        quorum = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        body = b"x" * 600  # about an envelope's size
        started = time.perf_counter()
        for first in range(0, messages, 200):
            batch = range(first, min(first + 200, messages))
            await asyncio.gather(
                *(channel.default_exchange.publish(aio_pika.Message(body), quorum.name) for _ in batch)
            )
        publish_rate = messages / (time.perf_counter() - started)
        await quorum.delete(if_unused=False, if_empty=False)
        return {"binds_per_s": round(bind_rate, 1), "confirmed_quorum_publishes_per_s": round(publish_rate, 1)}
    finally:
        await connection.close()


def redis_capacity(requests: int = 50_000) -> dict[str, float]:
    """Requests/s one redis-server process answers on this machine (redis-benchmark, 20 clients, no
    pipelining, like Relay's clients) for a SET, a PUBLISH and the rate limiter's own script."""
    server = RedisServer().start()
    try:
        benches = {
            "set": ["SET", "k", "v"],
            "publish": ["PUBLISH", "relay-socketio", "x" * 200],
            "rate_limit_script": ["EVAL", SLIDING_WINDOW, "1", "rl:k", "10000", "1000000000", "tok"],
        }
        out = {}
        for name, command in benches.items():
            ran = subprocess.run(
                ["redis-benchmark", "-p", str(server.port), "-q", "-c", "20", "-n", str(requests), *command],
                capture_output=True,
                text=True,
                timeout=120,
            )
            rate = re.search(r"([\d.]+) requests per second", ran.stdout)  # "SET: 123.45 requests per second, ..."
            if rate is None:
                raise RuntimeError(f"redis-benchmark said: {ran.stdout}{ran.stderr}")
            out[f"{name}_per_s"] = float(rate.group(1))
        return out
    finally:
        server.remove()


def write_report(report: dict[str, Any]) -> None:
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "costs.json").write_text(json.dumps(report, indent=1) + "\n")
    m, c, b = report["per_message"], report["per_connection"], report["broker_capacity"]
    line = (
        f"- {report['when']}: {report['sockets']} sockets / 2 replicas, {report['messages']} messages → per message"
        f" {m['db_commands']} db commands, {m['redis_requests']} Redis requests,"
        f" {m['message_service_cpu_us']} µs message-service CPU; {report['gateway_cpu_us_per_delivery']} µs gateway"
        f" CPU per delivery; per connection {c['redis_requests']} Redis requests, {c['db_commands']} db commands,"
        f" {c['redis_memory_bytes']} B Redis, {c['gateway_rss_kib']} KiB gateway RSS;"
        f" per typing {report['per_typing']['redis_requests']} Redis requests;"
        f" per session {report['per_session']['redis_memory_bytes']} B Redis; one redis-server answers"
        f" {report['redis_capacity']['rate_limit_script_per_s']:.0f} rate-limit scripts/s,"
        f" {report['redis_capacity']['set_per_s']:.0f} SETs/s; the broker {b['binds_per_s']:.0f} binds/s,"
        f" {b['confirmed_quorum_publishes_per_s']:.0f} confirmed quorum publishes/s"
        f" (shared machine)\n"
    )
    with (REPORTS / "costs.md").open("a") as md:
        md.write(line)
    print(line, end="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=40)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--typing", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=1))
    write_report(report)


if __name__ == "__main__":
    main()
