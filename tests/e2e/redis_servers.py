"""Private Redis servers for the outage tests: a plain server, and a master + replica watched by three
Sentinels (redis-server --sentinel: Debian's redis-server binary is the Sentinel too)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from relay_devstack.stack import free_port

SERVICE = "relaymaster"


def cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout.strip()


def wait_until(condition, what: str, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


class RedisServer:
    def __init__(self, port: int | None = None, *, replica_of: int | None = None) -> None:
        self.port = port or free_port()
        self.replica_of = replica_of
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="relay-redis-")  # a replica's full sync writes an RDB file here

    def start(self) -> None:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir]
        args += ["--save", "", "--appendonly", "no"]
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        wait_until(lambda: cli(self.port, "ping") == "PONG", "private redis-server did not start", timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self) -> None:
        """Die like a lost machine: no shutdown, no goodbye to the replicas."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class SentinelGroup:
    """A master, one replica and three Sentinels (quorum 2) on free local ports."""

    def __init__(self, workdir: Path, *, down_after_ms: int = 1000) -> None:
        self.master = RedisServer()
        self.replica = RedisServer(replica_of=self.master.port)
        self.ports = [free_port() for _ in range(3)]
        self.workdir = workdir
        self.down_after_ms = down_after_ms
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"redis+sentinel://{hosts}/0/{SERVICE}"

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        synced = "master_link_status:up"
        wait_until(lambda: synced in cli(self.replica.port, "info", "replication"), "replica not synced")
        for port in self.ports:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            sentinel = subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
            self.sentinels.append(sentinel)
        # every Sentinel knows the replica and the other two Sentinels before anything may fail
        wait_until(
            lambda: all(
                "num-other-sentinels\n2" in cli(p, "sentinel", "master", SERVICE)
                and "num-slaves\n1" in cli(p, "sentinel", "master", SERVICE)
                for p in self.ports
            ),
            "sentinels did not discover each other and the replica",
            timeout=30,
        )

    def master_port(self) -> int:
        answer = cli(self.ports[0], "sentinel", "get-master-addr-by-name", SERVICE).split()
        return int(answer[1])

    def stop(self) -> None:
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.replica.remove()
        self.master.remove()
