"""The processes a fan-out run drives: Node load clients, the Node reference system, a private Relay."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from relay_auth import mint_token
from relay_config import DEV_JWT_SECRET
from relay_devstack import Stack, StackConfig
from relay_devstack.stack import free_port
from relay_sdk.emit import Emitter
from yarl import URL

NODE_DIR = Path(__file__).parent / "node"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
CLIENT_PROCESSES = 2  # one Node process would become the bottleneck before the servers do
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def listener_pid(port: int) -> int | None:
    """The process listening on this local TCP port (the shared broker's or Redis's), found by socket inode."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd).removeprefix("socket:[").rstrip("]") in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def sent_by(answer: str) -> int:
    """The events a publisher sent, from its answer "done <sent>" (bench/node/paced.js)."""
    word, _, sent = answer.partition(" ")
    if word != "done" or not sent.isdigit():
        raise RuntimeError(f"publisher answered {answer!r}")
    return int(sent)


class LineProcess:
    """A child speaking one line of text per request and per answer."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, *args: str, ready_timeout: float = 300) -> tuple[LineProcess, str]:
        proc = await asyncio.create_subprocess_exec(
            *args, cwd=NODE_DIR, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**20
        )
        child = cls(proc)
        first = await asyncio.wait_for(child.readline(), ready_timeout)
        return child, first

    async def readline(self) -> str:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child {self.proc.pid} exited (rc {await self.proc.wait()})")
        return line.decode().strip()

    async def ask(self, line: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.readline()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


class NodeClients:
    """`socket.io-client` sockets spread over CLIENT_PROCESSES Node processes (bench/node/clients.js)."""

    def __init__(self, children: list[LineProcess]) -> None:
        self.children = children

    @classmethod
    async def start(cls, config: dict[str, Any]) -> NodeClients:
        count = config["count"]
        children = []
        for i in range(CLIENT_PROCESSES):
            part = dict(config, count=len(range(i, count, CLIENT_PROCESSES)))
            for per_socket in ("tokens", "roomList"):
                if per_socket in config:
                    part[per_socket] = config[per_socket][i::CLIENT_PROCESSES]
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as config_file:
                json.dump(part, config_file)
            try:
                child, _ = await LineProcess.start("node", "clients.js", config_file.name)
            finally:
                os.unlink(config_file.name)
            children.append(child)
        return cls(children)

    async def command(self, cmd: str) -> list[dict[str, Any]]:
        return [json.loads(a) for a in await asyncio.gather(*(c.ask(cmd) for c in self.children))]

    async def stop(self) -> None:
        for child in self.children:
            await child.stop()


class System(Protocol):
    name: str
    server_pids: list[int]
    broker_pids: list[int]  # the shared broker between publisher and servers (not counted in CPU per delivery)

    def client_config(self, sockets: int, rooms: int) -> dict[str, Any]: ...
    async def publish(self, events_per_s: float, seconds: float, rooms: int) -> int:
        """Offer `events_per_s` for `seconds`; returns the events published."""
        ...
    async def stop(self) -> None: ...


class NodeReference:
    """Two Socket.IO 4 processes with @socket.io/redis-adapter; @socket.io/redis-emitter publishes."""

    name = "node"

    def __init__(self, servers: list[LineProcess], publisher: LineProcess, ports: list[int]) -> None:
        self.servers = servers
        self.publisher = publisher
        self.ports = ports
        self.server_pids = [s.proc.pid for s in servers]
        self.broker_pids = [pid for pid in [listener_pid(URL(REDIS_URL).port or 6379)] if pid]

    @classmethod
    async def start(cls, key: str) -> NodeReference:
        ports = [free_port(), free_port()]
        servers = [(await LineProcess.start("node", "ref-server.js", str(p), REDIS_URL, key))[0] for p in ports]
        publisher, _ = await LineProcess.start("node", "publish.js", REDIS_URL, key)
        return cls(servers, publisher, ports)

    def client_config(self, sockets: int, rooms: int) -> dict[str, Any]:
        config: dict[str, Any] = {
            "urls": [f"http://127.0.0.1:{p}" for p in self.ports],
            "count": sockets,
            "event": "bench",
        }
        if rooms:
            config["roomList"] = [str((j // 2) % rooms) for j in range(sockets)]
        return config

    async def publish(self, events_per_s: float, seconds: float, rooms: int) -> int:
        return sent_by(await self.publisher.ask(f"{events_per_s} {seconds} {rooms}"))

    async def stop(self) -> None:
        for child in [*self.servers, self.publisher]:
            await child.stop()


class RelaySystem:
    """A private Relay (two gateway replicas + services); the SDK Emitter publishes through relay.emit."""

    name = "relay"
    tenant = "bench"

    def __init__(self, stack: Stack, emitter: Emitter, publisher: LineProcess | None = None) -> None:
        self.stack = stack
        self.emitter = emitter
        # None: the SDK's Emitter publishes (confirmed, from this process); else bench/node/relay-publish.js
        self.publisher = publisher
        self.server_pids = [p.popen.pid for n, p in stack.procs.items() if n.startswith("gateway")]
        self.broker_pids = [pid for pid in [listener_pid(URL(AMQP_URL).port or 5672)] if pid]

    @classmethod
    async def start(cls, key: str, log_dir: Path, *, publisher: str = "node") -> RelaySystem:
        config = StackConfig(
            drop_topology=True,
            instance=key,
            gateway_ports=[free_port(), free_port()],
            env={
                "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
                "JWT_SECRET": DEV_JWT_SECRET,
                # the reference has no presence: agents here see none either, or every connect of a
                # 5,000-socket shape is announced to the other 4,999 and the bench measures that storm
                "PRESENCE_VISIBLE_ROLES": "admin",
            },
            log_dir=str(log_dir),
        )
        stack = await asyncio.to_thread(lambda: Stack(config).start())
        emitter = await Emitter(AMQP_URL, instance=key, source="bench").connect()
        node = None
        if publisher == "node":
            node, _ = await LineProcess.start("node", "relay-publish.js", AMQP_URL, key, cls.tenant)
        return cls(stack, emitter, node)

    def client_config(self, sockets: int, rooms: int) -> dict[str, Any]:
        # rooms: each pair of sockets is one user (two tabs); events go to the user
        users = [f"room-{(j // 2) % rooms}" if rooms else f"u{j}" for j in range(sockets)]
        tokens = [mint_token(DEV_JWT_SECRET, user_id=u, roles=["agent"], tenant=self.tenant) for u in users]
        return {"urls": self.stack.gateway_urls, "count": sockets, "tokens": tokens, "event": "bench"}

    async def publish(self, events_per_s: float, seconds: float, rooms: int) -> int:
        if self.publisher is not None:
            return sent_by(await self.publisher.ask(f"{events_per_s} {seconds} {rooms}"))
        total = round(events_per_s * seconds)
        started = time.perf_counter()
        pending: set[asyncio.Task[str]] = set()
        for n in range(total):
            payload = {"t": time.time() * 1000, "n": n}
            if rooms:
                coro = self.emitter.to_user(self.tenant, f"room-{n % rooms}", "bench", payload)
            else:
                coro = self.emitter.to_tenant(self.tenant, "bench", payload)
            task = asyncio.create_task(coro)
            pending.add(task)
            task.add_done_callback(pending.discard)  # not a rebuild of the set per step (quadratic)
            delay = started + (n + 1) / events_per_s - time.perf_counter()
            if delay > 0.001:
                await asyncio.sleep(delay)
        await asyncio.gather(*pending)
        return total

    async def stop(self) -> None:
        if self.publisher is not None:
            await self.publisher.stop()
        await self.emitter.close()
        await asyncio.to_thread(self.stack.stop)
