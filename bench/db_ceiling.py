"""The embedded database's own ceiling for the group commit, without the rest of Relay.

Starts a private `secantusd-py` (nothing else running against it) and drives it with pymongo exactly as
the message service's group commit does: the real `SendPipeline` with the real repositories and indexes,
its broker publishes and claims replaced by no-ops. Each round: one `$in` read of the round's
conversations, one ordered `insert_many` of its N messages, one bulk stats update (one update per
conversation the round touches). Shapes: `one` (the N sends of a round into one conversation) and
`many` (N sends spread over --conversations, round-robin, as the ingest bench's many@R steps).
`--instances` runs that many pipelines at once (as message-service instances would), on disjoint
conversations, to see whether the server, not the client, is what limits.

Reports per (shape, N): documents/s, rounds/s, and the database process's CPU ms per message and cores
busy (`/proc/<pid>/stat`), the client's CPU beside it. To bench/reports/db_ceiling.json, a line in
ingest.md. Measured, never asserted. Loopback only, bounded in time.

    .venv/bin/python -m bench.db_ceiling --sizes 1,10,20,50,200 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from relay_contracts import Envelope, new_id
from relay_contracts import messages as m
from relay_contracts.envelope import Actor
from relay_devstack.stack import free_port
from relay_message import domain
from relay_message.adapters.repo import ConversationRepo, MessageRepo
from relay_message.handlers import Deps
from relay_message.ingest import MAX_BATCH, SendPipeline

from bench.procs import cpu_seconds

REPORTS = Path(__file__).parent / "reports"
TENANT = "bench"
AGENT = "agent-0"


class Database:
    """A private secantusd-py in a temporary directory, as relay_devstack starts it."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="relay-dbceiling-")
        self.port = free_port()
        server = shutil.which("secantusd-py") or str(Path(sys.executable).parent / "secantusd-py")
        argv = [server, "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", self.dir]
        self.proc = subprocess.Popen([*argv, "--log-level", "WARNING"])
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("secantusd-py did not open its port") from None
                time.sleep(0.1)
        self.url = f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


async def _no_publish(key: str, event: Envelope) -> None:
    return None


class Timings:
    """Wall seconds spent in each of the round's database calls (the server is CPU-bound and serves one
    request at a time, so on an idle machine this is its time per call)."""

    def __init__(self) -> None:
        self.seconds = {"read": 0.0, "insert": 0.0, "stats": 0.0}

    def wrap(self, phase: str, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - started

        return timed

    def instrument(self, conversations: ConversationRepo, messages: MessageRepo) -> None:
        conversations.get_many = self.wrap("read", conversations.get_many)  # type: ignore[method-assign,assignment]
        conversations.record_many = self.wrap("stats", conversations.record_many)  # type: ignore[method-assign,assignment]
        messages.insert_batch = self.wrap("insert", messages.insert_batch)  # type: ignore[method-assign,assignment]


async def open_conversations(conversations: ConversationRepo, n: int) -> list[str]:
    """n support chats, each a visitor's, with one agent who has answered (so both count unread)."""
    ids = []
    now = datetime.now(UTC)
    for _ in range(n):
        cid, visitor = new_id(), f"visitor-{new_id()}"
        participants = [domain.member(visitor, "visitor", now), domain.member(AGENT, "agent", now)]
        doc = domain.new_conversation(
            tenant=TENANT,
            conversation_id=cid,
            type_=domain.SUPPORT,
            status="in_progress",
            participants=participants,
            created_by=visitor,
            at=now,
        )
        assert await conversations.insert(doc)
        ids.append(cid)
    return ids


def send(cid: str) -> tuple[Envelope, m.SendMessage]:
    client_id = new_id()
    cmd = m.SendMessage(conversationId=cid, content=f"bench {client_id}", clientMessageId=client_id)
    actor = Actor(userId=AGENT, roles=("agent",))
    env = Envelope(type="message.send", tenant=TENANT, correlationId=new_id(), actor=actor, data=cmd.model_dump())
    return env, cmd


async def drive(deps: Deps, chats: list[str], size: int, until: float) -> tuple[int, int]:
    """Rounds of `size` sends (round-robin over `chats`) until `until`; (messages stored, rounds)."""
    cycle = itertools.cycle(chats)
    stored = rounds = 0
    while time.monotonic() < until:
        batch = [send(next(cycle)) for _ in range(size)]
        # all submitted in one loop pass: the pipeline's drainer takes them as one round
        results = await asyncio.gather(
            *(deps.sends.submit(deps, env, cmd, AGENT, ("agent",), None) for env, cmd in batch)
        )
        stored += len(results)
        rounds += 1
    return stored, rounds


async def step(db: Database, shape: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(db.url)
    database = client[f"ceiling_{new_id().lower()}"]  # fresh collections per step: no earlier documents
    conversations, messages = ConversationRepo(database), MessageRepo(database)
    await conversations.ensure_indexes()
    await messages.ensure_indexes()
    per_instance = 1 if shape == "one" else args.conversations
    chats = await open_conversations(conversations, per_instance * args.instances)
    # a round is one commit even beyond the service's MAX_BATCH: what the server would do with bigger ones
    deps = [
        Deps(
            conversations=conversations,
            messages=messages,
            publish=_no_publish,
            sends=SendPipeline(max(size, MAX_BATCH)),
        )
        for _ in range(args.instances)
    ]
    groups = [chats[i * per_instance : (i + 1) * per_instance] for i in range(args.instances)]
    # warm up (first inserts build the indexes' first pages), then measure
    await asyncio.gather(*(drive(d, g, size, time.monotonic() + 0.5) for d, g in zip(deps, groups, strict=True)))
    timings = Timings()
    timings.instrument(conversations, messages)
    pids = {"database": db.proc.pid, "client": os.getpid()}
    before = {name: cpu_seconds([pid]) for name, pid in pids.items()}
    started = time.monotonic()
    until = started + args.seconds
    done = await asyncio.gather(*(drive(d, g, size, until) for d, g in zip(deps, groups, strict=True)))
    wall = time.monotonic() - started
    spent = {name: cpu_seconds([pid]) - before[name] for name, pid in pids.items()}
    stored, rounds = sum(d[0] for d in done), sum(d[1] for d in done)
    await client.close()
    touched = min(size, per_instance)  # conversations per round: read once, one stats update each
    return {
        "shape": shape,
        "sends_per_round": size,
        "conversations_per_round": touched,
        "instances": args.instances,
        "seconds": round(wall, 2),
        "messages": stored,
        "rounds": rounds,
        "docs_per_s": round(stored / wall, 1),
        "round_ms": round(1000 * wall * args.instances / rounds, 2),
        "db_cpu_ms_per_msg": round(1000 * spent["database"] / stored, 3),
        "db_cores_busy": round(spent["database"] / wall, 2),
        "client_cpu_ms_per_msg": round(1000 * spent["client"] / stored, 3),
        "client_cores_busy": round(spent["client"] / wall, 2),
        # per round, wall: the `$in` read, the ordered insert_many, the bulk stats update
        **{f"{phase}_ms_per_round": round(1000 * t / rounds, 2) for phase, t in timings.seconds.items()},
        "db_ceiling_per_core": round(stored / spent["database"], 0) if spent["database"] else None,
    }


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    db = Database()
    results = []
    try:
        for shape in args.shapes.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                result = await step(db, shape, size, args)
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        db.close()
    return results


def record(label: str, when: str, load: str, results: list[dict[str, Any]]) -> None:
    path = REPORTS / "db_ceiling.json"
    history = json.loads(path.read_text()) if path.exists() else {}
    history[label] = {"when": when, "load_average": load, "steps": results}
    path.write_text(json.dumps(history, indent=2) + "\n")
    with (REPORTS / "ingest.md").open("a") as md:
        for r in results:
            md.write(
                f"- {when} db-ceiling {label} (load {load}): {r['shape']} N={r['sends_per_round']} "
                f"x{r['instances']} instance(s) → {r['docs_per_s']} docs/s, DB {r['db_cpu_ms_per_msg']} ms CPU/msg "
                f"({r['db_cores_busy']} cores), client {r['client_cpu_ms_per_msg']} ms/msg\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", default="one,many", help="one: a round into one conversation; many: spread")
    parser.add_argument("--sizes", default="1,10,20,50", help="sends per round, per step")
    parser.add_argument("--conversations", type=int, default=100, help="conversations of the `many` shape")
    parser.add_argument("--instances", type=int, default=1, help="pipelines at once, on disjoint conversations")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    results = asyncio.run(run(args))
    REPORTS.mkdir(exist_ok=True)
    record(args.label or when, when, load, results)


if __name__ == "__main__":
    main()
