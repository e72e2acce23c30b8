"""Ingest benchmark: messages posted into ONE conversation and across many, at increasing rates.

Each step posts `POST /v2/messages` at a fixed offered rate (open loop, both gateway replicas, aiohttp)
into fresh support chats, then checks what a user would: every accepted message stored once with a
gap-free `seq`, delivered once and in `seq` order to an agent socket on each replica, and how many
posts answered 503 were applied anyway (SPEC §7 says: none). Reports accepted/s, p50/p99 answer
latency and the 503 count per step to bench/reports/ingest.json (+ a line in ingest.md); with
`--profile`, py-spy samples the message service, a gateway and the database during the step named
by `--profile-step` and summarises where their time goes. Measured, never asserted.
Loopback only, bounded in count and time.

    .venv/bin/python -m bench.ingest --one 100,250,500 --many 500,1000,2000 --seconds 5 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from relay_auth import mint_token
from relay_broker import Broker, RpcClient, Topology
from relay_config import DEV_JWT_SECRET
from relay_contracts import Envelope, RelayError, new_id
from relay_contracts.envelope import Actor
from relay_devstack import Stack, StackConfig
from relay_devstack.stack import free_port
from relay_sdk import RelaySocket

from bench.procs import cpu_seconds
from bench.profile import Profiler
from bench.stats import percentile

REPORTS = Path(__file__).parent / "reports"
TENANT = "bench"
MAX_IN_FLIGHT = 4000  # posts outstanding at once; beyond it the generator itself is the bottleneck
TICK = 0.01


def token(user: str, role: str) -> str:
    return mint_token(DEV_JWT_SECRET, user_id=user, roles=[role], tenant=TENANT)


@dataclass
class Post:
    chat: str
    client_id: str
    sent: float
    status: int = 0
    answered: float = 0.0


@dataclass
class Receiver:
    """One agent socket on one replica: the seqs of `message:new` per chat, in arrival order."""

    sock: RelaySocket
    seqs: dict[str, list[int]] = field(default_factory=dict)
    count: int = 0

    def on_message(self, message: dict[str, Any]) -> None:
        self.seqs.setdefault(message["chatId"], []).append(int(message["seq"]))
        self.count += 1


async def queue_depth(broker: Broker, queue: str) -> int:
    assert broker.connection is not None
    channel = await broker.connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await channel.close()


async def wait_until(condition: Any, timeout: float, poll: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(poll)
    return False


class Bench:
    def __init__(
        self,
        stack: Stack,
        http: aiohttp.ClientSession,
        broker: Broker,
        rpc: RpcClient | None = None,
        broker_pid: int | None = None,
    ) -> None:
        self.rpc = rpc  # set: sends go straight to the message service as commands, not through a gateway
        self.stack = stack
        self.urls = stack.gateway_urls
        self.http = http
        self.broker = broker
        self.receivers: list[Receiver] = []
        self.users: dict[str, str] = {}  # token → user id
        self.broker_pid = broker_pid
        self.node: asyncio.subprocess.Process | None = None  # set: the Node generator posts, not this process

    async def start_node(self) -> None:
        script = Path(__file__).parent / "node" / "poster.js"
        self.node = await asyncio.create_subprocess_exec(
            "node", str(script), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26
        )
        assert self.node.stdout is not None
        assert (await self.node.stdout.readline()).strip() == b"ready"

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each stack process, this generator and (when known) the broker."""
        pids = {name: proc.popen.pid for name, proc in self.stack.procs.items()}
        pids["generator"] = os.getpid()  # the bench itself: also the socket receivers and the checks
        if self.node is not None:
            pids["node-generator"] = self.node.pid
        if self.broker_pid:
            pids["rabbitmq"] = self.broker_pid
        return {name: cpu_seconds([pid]) for name, pid in pids.items()}

    async def start(self) -> None:
        for i, url in enumerate(self.urls):
            sock = RelaySocket(url, auth={"token": token(f"bench-agent-{i}", "agent")})
            receiver = Receiver(sock)
            sock.sio.on("message:new", receiver.on_message)
            await sock.connect()
            self.receivers.append(receiver)

    async def close(self) -> None:
        for r in self.receivers:
            await r.sock.close()
        if self.node is not None and self.node.stdin is not None:
            self.node.stdin.close()
            await self.node.wait()

    async def request(self, method: str, url: str, who: str, body: Any = None) -> tuple[int, Any]:
        headers = {"authorization": f"Bearer {who}"}
        async with self.http.request(method, url, json=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def setup_request(self, method: str, url: str, who: str, body: Any = None) -> tuple[int, Any]:
        """A request the bench needs (not a measured one): retried over a dropped keep-alive connection."""
        for attempt in range(5):
            try:
                return await self.request(method, url, who, body)
            except aiohttp.ClientConnectionError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    async def open_chats(self, n: int) -> dict[str, str]:
        """n support chats, each opened by its own visitor; the agent sockets join them all."""
        chats: dict[str, str] = {}
        for i in range(n):
            user = f"bench-visitor-{uuid.uuid4().hex[:8]}-{i}"
            visitor = token(user, "visitor")
            self.users[visitor] = user
            status, body = await self.setup_request("POST", f"{self.urls[0]}/v2/chats", visitor, {"subject": "bench"})
            assert status == 201, body
            chats[body["chatId"]] = visitor
        for r in self.receivers:
            for chat in chats:
                await r.sock.call("chat:join", {"chatId": chat})
        return chats

    async def post(self, p: Post, url: str, who: str, counter: list[int]) -> None:
        try:
            if self.rpc is not None:
                p.status = await self.command(p, who)
            else:
                body = {"chatId": p.chat, "content": f"bench {p.client_id}", "clientMessageId": p.client_id}
                p.status, _ = await self.request("POST", f"{url}/v2/messages", who, body)
        except (aiohttp.ClientError, TimeoutError):
            p.status = -1
        p.answered = time.perf_counter()
        counter[0] -= 1

    async def post_with_node(
        self, name: str, chats: dict[str, str], total: int, rate: float
    ) -> tuple[list[Post], int, float]:
        """The step's posts sent by the Node generator: (posts, skipped by its in-flight limit, seconds offering)."""
        assert self.node is not None and self.node.stdin is not None and self.node.stdout is not None
        chat_ids = list(chats)
        planned = [Post(chat_ids[n % len(chat_ids)], f"{name}-{n}-{uuid.uuid4().hex[:6]}", 0.0) for n in range(total)]
        jobs = [
            {
                "url": f"{self.urls[n % len(self.urls)]}/v2/messages",
                "token": chats[p.chat],
                "body": {"chatId": p.chat, "content": f"bench {p.client_id}", "clientMessageId": p.client_id},
            }
            for n, p in enumerate(planned)
        ]
        line = json.dumps({"rate": rate, "maxInFlight": MAX_IN_FLIGHT, "posts": jobs}) + "\n"
        self.node.stdin.write(line.encode())
        await self.node.stdin.drain()
        answer = json.loads(await self.node.stdout.readline())
        posts = []
        for p, (status, sent_ms, answered_ms) in zip(planned, answer["results"], strict=True):
            if status == 0:
                continue  # skipped by the generator
            p.status, p.sent, p.answered = status, sent_ms / 1000, answered_ms / 1000
            posts.append(p)
        return posts, total - len(posts), answer["offeredMs"] / 1000

    async def read(self, url: str, who: str, timeout: float = 120.0) -> Any:
        """A GET that waits out a backlog (503) instead of failing the report."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = await self.setup_request("GET", url, who)
            if status == 200:
                return body
            if status != 503 or time.monotonic() > deadline:
                raise RuntimeError(f"GET {url}: {status} {body}")
            await asyncio.sleep(1)

    async def settle(self, chat_ids: list[str], timeout: float = 180.0) -> bool:
        """Until the service's queue is empty and the step's chats stopped growing for 2 s."""
        lanes = self.broker.topology.service_queues("message")
        agent = token("bench-agent-0", "agent")
        wanted = set(chat_ids)
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chats = await self.read(f"{self.urls[0]}/v2/chats", agent, timeout=deadline - time.monotonic())
            except RuntimeError:
                return False
            total = sum(c.get("lastSeq", 0) for c in chats.get("chats", []) if c.get("chatId") in wanted)
            if total != last:
                last, stable_since = total, time.monotonic()
            elif time.monotonic() - stable_since >= 2 and sum([await queue_depth(self.broker, q) for q in lanes]) == 0:
                return True
            await asyncio.sleep(0.5)
        return False

    async def command(self, p: Post, who: str) -> int:
        """The send as the gateway would put it on the broker; its answer as the HTTP status it would become."""
        assert self.rpc is not None
        data = {"conversationId": p.chat, "content": f"bench {p.client_id}", "clientMessageId": p.client_id}
        actor = Actor(userId=self.users[who], roles=("visitor",))
        envelope = Envelope(type="message.send", tenant=TENANT, correlationId=new_id(), actor=actor, data=data)
        try:
            await self.rpc.call(envelope)
        except RelayError as exc:
            return exc.http_status
        return 201

    async def service_metrics(self) -> dict[str, float]:
        """The message service's group-commit counters (sums and counts, over its instances), from /metrics."""
        out: dict[str, float] = {}
        for name in self.stack.instances("message"):
            async with self.http.get(f"{self.stack.ops_url(name)}/metrics") as resp:
                text = await resp.text()
            for line in text.splitlines():
                if line.startswith("relay_ingest_") and ("_sum" in line or "_count" in line):
                    metric, _, value = line.rpartition(" ")
                    out[metric] = out.get(metric, 0.0) + float(value)
        return out

    async def history(self, chat: str, who: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            url = f"{self.urls[0]}/v2/messages/chat/{chat}?limit=200&afterSeq={after}"
            page = await self.read(url, who)
            out.extend(page["messages"])
            if not page["hasMore"] or not page["messages"]:
                return out
            after = page["messages"][-1]["seq"]

    async def step(self, name: str, conversations: int, rate: float, seconds: float, profiler: Profiler | None) -> dict:
        chats = await self.open_chats(conversations)
        chat_ids = list(chats)
        total = int(rate * seconds)
        posts: list[Post] = []
        tasks = []
        in_flight = [0]
        skipped = 0
        if profiler is not None:
            profiler.start(seconds)
        metrics_before = await self.service_metrics()
        cpu_before = self.cpu()
        started = time.perf_counter()
        if self.node is not None:
            posts, skipped, offered_s = await self.post_with_node(name, chats, total, rate)
        else:
            for n in range(total):
                due = started + n / rate
                delay = due - time.perf_counter()
                if delay > TICK:
                    await asyncio.sleep(delay)
                if in_flight[0] >= MAX_IN_FLIGHT:
                    skipped += 1
                    continue
                chat = chat_ids[n % len(chat_ids)]
                p = Post(chat, f"{name}-{n}-{uuid.uuid4().hex[:6]}", time.perf_counter())
                posts.append(p)
                in_flight[0] += 1
                tasks.append(asyncio.create_task(self.post(p, self.urls[n % len(self.urls)], chats[chat], in_flight)))
            offered_s = time.perf_counter() - started
            await asyncio.gather(*tasks)
        answered_s = time.perf_counter() - started
        cpu_after = self.cpu()
        profile = profiler.stop() if profiler is not None else None

        # let whatever is still queued or in hand land (or expire), so the checks see the final state
        settled = await self.settle(chat_ids)
        group_commit = summarise_metrics(metrics_before, await self.service_metrics())
        accepted = [p for p in posts if p.status == 201]
        refused = [p for p in posts if p.status == 503]
        expected = len(accepted)

        async def all_delivered() -> bool:
            return all(sum(len(r.seqs.get(c, [])) for c in chat_ids) >= expected for r in self.receivers)

        await wait_until(all_delivered, 30)
        await asyncio.sleep(1.0)  # a duplicate would have arrived by now

        stored_once, gap_free, in_order, delivered_once = True, True, True, True
        stored_total = 0
        refused_ids = {p.client_id for p in refused}
        applied_after_503 = 0
        accepted_missing = 0
        for chat, who in chats.items():
            history = await self.history(chat, who)
            stored_total += len(history)
            seqs = [m["seq"] for m in history]
            ids = [m["clientMessageId"] for m in history]
            gap_free &= seqs == list(range(1, len(seqs) + 1))
            stored_once &= len(ids) == len(set(ids))
            applied_after_503 += sum(1 for i in ids if i in refused_ids)
            accepted_missing += len({p.client_id for p in accepted if p.chat == chat} - set(ids))
            for r in self.receivers:
                got = r.seqs.get(chat, [])
                in_order &= got == sorted(got)
                delivered_once &= sorted(got) == seqs
        latencies = [p.answered - p.sent for p in accepted]
        all_latencies = [p.answered - p.sent for p in posts]
        result = {
            "step": name,
            "settled_before_checks": settled,
            "conversations": conversations,
            "offered_per_s": rate,
            "seconds": seconds,
            "posted": len(posts),
            "skipped_by_generator": skipped,
            "generator_per_s": round(len(posts) / offered_s, 1),
            "accepted": expected,
            "accepted_per_s": round(expected / answered_s, 1),
            "answered_503": len(refused),
            "other_errors": len(posts) - expected - len(refused),
            "other_statuses": dict(Counter(p.status for p in posts if p.status not in (201, 503))),
            "via": "rpc" if self.rpc is not None else "http",
            "generator": "node" if self.node is not None else "python",
            "latency_p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
            "latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "all_answers_p99_ms": round(percentile(all_latencies, 0.99) * 1000, 1),
            "stored": stored_total,
            "accepted_not_stored": accepted_missing,
            "applied_after_503": applied_after_503,
            "stored_once": stored_once,
            "seq_gap_free": gap_free,
            "delivered_once_both_replicas": delivered_once,
            "delivered_in_seq_order": in_order,
            "group_commit": group_commit,
            "cpu_ms_per_accepted": cpu_per_message(cpu_before, cpu_after, expected),
            "cpu_cores_busy": {k: round((cpu_after[k] - v) / answered_s, 2) for k, v in cpu_before.items()},
        }
        if profile is not None:
            result["profile"] = profile
        print(json.dumps({k: v for k, v in result.items() if k != "profile"}))
        return result


def cpu_per_message(before: dict[str, float], after: dict[str, float], messages: int) -> dict[str, float]:
    """CPU milliseconds each process spent per accepted message from the first post to the last answer."""
    if not messages:
        return {}
    out = {name: round(1000 * (after[name] - spent) / messages, 2) for name, spent in before.items()}
    out["total"] = round(sum(out.values()), 2)
    return out


def summarise_metrics(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean sends per commit and mean milliseconds per phase over one step."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    out: dict[str, float] = {}
    commits = delta("relay_ingest_batch_size_count")
    out["commits"] = commits
    if commits:
        out["mean_sends_per_commit"] = round(delta("relay_ingest_batch_size_sum") / commits, 1)
    for phase in ("read", "write", "announce"):
        label = f'{{phase="{phase}"}}'
        count = delta(f"relay_ingest_phase_seconds_count{label}")
        if count:
            out[f"{phase}_ms_mean"] = round(1000 * delta(f"relay_ingest_phase_seconds_sum{label}") / count, 1)
    return out


def parse_rates(text: str) -> list[float]:
    return [float(r) for r in text.split(",") if r.strip()]


async def run(args: argparse.Namespace, stack: Stack, report: Callable[[dict], None]) -> list[dict]:
    broker = Broker(stack.config.amqp_url, Topology(stack.config.instance))
    await broker.connect()
    connector = aiohttp.TCPConnector(limit=512)
    results: list[dict] = []
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        rpc = None
        if args.via == "rpc":
            rpc = RpcClient(broker, timeout=float(stack.config.env.get("RPC_TIMEOUT_SECONDS", 5.0)))
            await rpc.start()
        bench = Bench(stack, http, broker, rpc, args.broker_pid)
        await bench.start()
        if args.generator == "node" and args.via == "http":
            await bench.start_node()
        plan = [("one", 1, r) for r in parse_rates(args.one)]
        plan += [("many", args.conversations, r) for r in parse_rates(args.many)]
        for kind, conversations, rate in plan:
            name = f"{kind}@{rate:g}"
            profiler = None
            if args.profile and name in args.profile_step.split(","):
                profiler = Profiler(stack, REPORTS / "profiles", name)
            result = await bench.step(name, conversations, rate, args.seconds, profiler)
            results.append(result)
            report(result)
        await bench.close()
    await broker.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", default="50,100,250,500", help="offered msg/s into one conversation, per step")
    parser.add_argument("--many", default="500,1000,2000", help="offered msg/s across --conversations, per step")
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--profile", action="store_true", help="py-spy the processes during --profile-step")
    parser.add_argument("--profile-step", default="one@250", help="step(s) to profile, comma-separated")
    parser.add_argument(
        "--via", choices=("http", "rpc"), default="http", help="post through the gateways, or send commands directly"
    )
    parser.add_argument(
        "--generator",
        choices=("python", "node"),
        default="python",
        help="who posts (--via http): this process, or bench/node/poster.js",
    )
    parser.add_argument("--label", default="", help="a word for the report line (say: before, after)")
    parser.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the stack's processes")
    parser.add_argument("--broker-pid", type=int, default=0, help="the broker's process, to count its CPU too")
    parser.add_argument("--amqp-url", default=StackConfig.amqp_url, help="the broker the stack uses")
    args = parser.parse_args()
    env = {
        "LOG_LEVEL": "WARNING",
        "JWT_SECRET": DEV_JWT_SECRET,
        "RATE_LIMITS": "message=off,rest_write=off,join=off,rest_read=off",
    }
    env.update(dict(kv.split("=", 1) for kv in args.env))
    config = StackConfig(
        drop_topology=True,
        instance=f"bench-{uuid.uuid4().hex[:6]}",
        gateway_ports=[free_port(), free_port()],
        env=env,
        log_dir=str(REPORTS / "logs"),
        amqp_url=args.amqp_url,
    )
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    label = args.label or when
    with Stack(config) as stack:
        asyncio.run(run(args, stack, lambda result: record(label, when, result)))


def record(label: str, when: str, result: dict) -> None:
    """Each step lands in the reports as soon as it is measured (a later step may overload the stack)."""
    REPORTS.mkdir(exist_ok=True)
    path = REPORTS / "ingest.json"
    history = json.loads(path.read_text()) if path.exists() else {}
    entry = history.setdefault(label, {"when": when, "steps": []})
    entry["steps"] = [s for s in entry["steps"] if s["step"] != result["step"]] + [result]
    path.write_text(json.dumps(history, indent=2) + "\n")
    r = result
    with (REPORTS / "ingest.md").open("a") as md:
        md.write(
            f"- {when} {label}: {r['step']} ({r['conversations']} conv) → {r['accepted_per_s']} accepted/s, "
            f"p50 {r['latency_p50_ms']} ms, p99 {r['latency_p99_ms']} ms, 503 {r['answered_503']}, "
            f"applied after 503 {r['applied_after_503']}, gap-free {r['seq_gap_free']}, "
            f"delivered once in order {r['delivered_once_both_replicas'] and r['delivered_in_seq_order']}\n"
        )


if __name__ == "__main__":
    main()
