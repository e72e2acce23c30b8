"""A Redis master + replica watched by three Sentinels for the failover test (redis-server --sentinel:
Debian's redis-server binary is the Sentinel too)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from relay_devstack.redis_server import RedisServer, redis_cli
from relay_devstack.stack import free_port

SERVICE = "relaymaster"


def wait_until(condition, what: str, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


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
        wait_until(lambda: synced in redis_cli(self.replica.port, "info", "replication"), "replica not synced")
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
                "num-other-sentinels\n2" in redis_cli(p, "sentinel", "master", SERVICE)
                and "num-slaves\n1" in redis_cli(p, "sentinel", "master", SERVICE)
                for p in self.ports
            ),
            "sentinels did not discover each other and the replica",
            timeout=30,
        )

    def master_port(self) -> int:
        answer = redis_cli(self.ports[0], "sentinel", "get-master-addr-by-name", SERVICE).split()
        return int(answer[1])

    def stop(self) -> None:
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.replica.remove()
        self.master.remove()
