"""A private redis-server on a free local port (outage tests and benchmarks that count its commands)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

from relay_devstack.stack import free_port


def redis_cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout.strip()


class RedisServer:
    """No persistence; `replica_of` makes it a replica of another local server."""

    def __init__(self, port: int | None = None, *, replica_of: int | None = None) -> None:
        self.port = port or free_port()
        self.replica_of = replica_of
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="relay-redis-")  # a replica's full sync writes an RDB file here

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir]
        args += ["--save", "", "--appendonly", "no"]
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while redis_cli(self.port, "ping") != "PONG":
            if time.monotonic() > deadline:
                raise RuntimeError(f"private redis-server on {self.port} did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def kill(self) -> None:
        """Die like a lost machine: no shutdown, no goodbye to the replicas."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
