"""Start and stop Relay's processes: embedded MongoDB-wire server, services, gateway replicas."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def available_services() -> tuple[str, ...]:
    """The services installed in this checkout (each is `relay_<name>` with a `__main__`)."""
    import importlib.util

    def installed(name: str) -> bool:
        return importlib.util.find_spec(name) is not None and importlib.util.find_spec(f"{name}.__main__") is not None

    return tuple(s for s in ("message", "presence", "order") if installed(f"relay_{s}"))


def drop_topology(amqp_url: str, instance: str) -> None:
    """Delete a Relay instance's exchanges and queues on the broker (callable inside a running loop too)."""
    import asyncio
    import threading

    from relay_broker import Broker, Topology

    async def drop() -> None:
        broker = Broker(amqp_url, Topology(instance))
        await broker.connect()
        try:
            await broker.delete_topology()
        finally:
            await broker.close()

    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(drop())
        except BaseException as exc:  # reported to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"drop-topology-{instance}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def drop_keys(redis_url: str, instance: str) -> int:
    """Delete a Relay instance's Redis keys (every key Relay writes starts with `<instance>:`). Only for a
    plain Redis URL: a `redis+sentinel://` group is a test's own servers, gone with the test."""
    import redis

    dropped = 0
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        return dropped
    with redis.Redis.from_url(redis_url) as client:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{instance}:*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                dropped += int(client.unlink(*batch))
                batch.clear()
        if batch:
            dropped += int(client.unlink(*batch))
    return dropped


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StackConfig:
    instance: str = "relay"
    gateway_ports: list[int] = field(default_factory=lambda: [3000, 3001])
    services: tuple[str, ...] = field(default_factory=available_services)
    service_instances: int = 1  # processes of each service (competing for its command lanes)
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    redis_url: str = "redis://127.0.0.1:6379/0"
    mongo_url: str | None = None  # None: start the embedded MongoDB-wire server
    mongo_data_dir: str | None = None  # None: a temporary directory removed at stop
    log_dir: str | None = None  # None: children log to this process's stdout
    env: dict[str, str] = field(default_factory=dict)
    # a throwaway instance (tests, benchmarks): its broker exchanges and durable queues and its Redis keys
    # are deleted at stop; left behind, each stack's 25 quorum queues pile up until the broker runs out of
    # file handles, and its keys (~5,000 after a presence storm) slow every SCAN of the shared Redis
    drop_topology: bool = False


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    ready_url: str | None
    log: IO[bytes] | None = None


class Stack:
    """A running Relay. `with Stack(cfg) as s:` or `start()` / `stop()`."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.procs: dict[str, Proc] = {}
        self.mongo_url = config.mongo_url or ""
        self.ops_ports: dict[str, int] = {}
        self._tmp: str | None = None
        self._mongo_port: int | None = None

    @property
    def gateway_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.config.gateway_ports]

    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RELAY_INSTANCE=self.config.instance,
            AMQP_URL=self.config.amqp_url,
            REDIS_URL=self.config.redis_url,
            MONGO_URL=self.mongo_url,
            LOG_FORMAT=env.get("LOG_FORMAT", "json"),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.config.env)
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str], ready_url: str | None) -> Proc:
        log: IO[bytes] | None = None
        stdout: int | IO[bytes] | None = None
        if self.config.log_dir:
            Path(self.config.log_dir).mkdir(parents=True, exist_ok=True)
            log = open(Path(self.config.log_dir) / f"{name}.log", "ab")
            stdout = log
        popen = subprocess.Popen(args, env=env, stdout=stdout, stderr=subprocess.STDOUT if log else None)
        proc = Proc(name, popen, ready_url, log)
        previous = self.procs.get(name)
        if previous is not None and previous.log is not None:
            previous.log.close()  # a restart replaces a dead process
        self.procs[name] = proc
        return proc

    def start(self, timeout: float = 60.0) -> Stack:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        if not self.mongo_url:
            self.start_mongo()
        env = self.base_env()
        for service in self.config.services:
            self.start_service(service, env=env, wait=False)
        self.wait_ready([n for s in self.config.services for n in self.instances(s)], timeout)
        names = []
        for index, port in enumerate(self.config.gateway_ports):
            name = f"gateway-{index}"
            names.append(name)
            self.start_gateway(index, port, wait=False)
        self.wait_ready(names, timeout)

    def instances(self, service: str) -> list[str]:
        """Process names of a service's instances: `message-0`, `message-1`, ..."""
        return [f"{service}-{index}" for index in range(self.config.service_instances)]

    def ops_url(self, name: str) -> str:
        """A service instance's ops endpoints (`/readyz`, `/metrics`)."""
        return f"http://127.0.0.1:{self.ops_ports[name]}"

    def start_service(
        self,
        service: str,
        *,
        index: int | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> list[Proc]:
        """Start one instance of `service` (`index`), or every instance; a restart reuses its ops port."""
        names = self.instances(service) if index is None else [f"{service}-{index}"]
        procs = []
        for name in names:
            port = self.ops_ports.get(name) or free_port()
            self.ops_ports[name] = port
            procs.append(
                self._spawn(
                    name,
                    [sys.executable, "-m", f"relay_{service}"],
                    {**(env or self.base_env()), f"{service.upper()}_OPS_PORT": str(port)},
                    f"http://127.0.0.1:{port}/readyz",
                )
            )
        if wait:
            self.wait_ready(names, timeout)
        return procs

    def start_gateway(
        self, index: int, port: int, *, wait: bool = True, timeout: float = 30.0, env: dict[str, str] | None = None
    ) -> Proc:
        name = f"gateway-{index}"
        env = {
            **self.base_env(),
            **(env or {}),
            "GATEWAY_PORT": str(port),
            "REPLICA_ID": f"{self.config.instance}-gw{index}-{port}",
        }
        proc = self._spawn(name, [sys.executable, "-m", "relay_gateway"], env, f"http://127.0.0.1:{port}/readyz")
        if wait:
            self.wait_ready([name], timeout)
        return proc

    def start_mongo(self) -> None:
        """Start the embedded server; a restart (after `kill("mongo")`) reuses its port and data."""
        port = self._mongo_port or free_port()
        self._mongo_port = port
        data_dir = self.config.mongo_data_dir or self._tmp
        if data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="relay-mongo-")
            data_dir = self._tmp
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        server = shutil.which("secantusd-py") or str(Path(sys.executable).parent / "secantusd-py")
        self._spawn(
            "mongo",
            [server, "--host", "127.0.0.1", "--port", str(port), "--storage-path", data_dir, "--log-level", "WARNING"],
            dict(os.environ),
            None,
        )
        self.mongo_url = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.procs["mongo"].popen.poll() is not None:
                raise RuntimeError("embedded MongoDB-wire server (secantusd-py) exited at start")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("embedded MongoDB-wire server did not open its port in 30 s")

    def wait_ready(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            for name in list(pending):
                proc = self.procs[name]
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.popen.returncode} during start")
                try:
                    assert proc.ready_url is not None
                    with urllib.request.urlopen(proc.ready_url, timeout=1) as resp:
                        if resp.status == 200:
                            pending.remove(name)
                except Exception:
                    pass
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout}s: {pending}")
            if pending:
                time.sleep(0.2)

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 30.0) -> None:
        """Signal a process (`gateway-1`, `message-0`), or every instance of a service (`message`),
        and wait for it to exit (a SIGTERM drains first)."""
        procs = [self.procs[name]] if name in self.procs else [self.procs[n] for n in self.instances(name)]
        for proc in procs:
            proc.popen.send_signal(sig)
        for proc in procs:
            proc.popen.wait(timeout)

    def stop(self) -> None:
        # gateways first, the database last
        order = sorted(self.procs.values(), key=lambda p: (p.name == "mongo", not p.name.startswith("gateway")))
        for proc in order:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in order:
            try:
                proc.popen.wait(30)  # a gateway drains its sockets first (GATEWAY_DRAIN_SECONDS)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(5)
            if proc.log:
                proc.log.close()
        self.procs.clear()
        if self.config.drop_topology:
            # a throwaway instance: its broker topology and its Redis keys go with it
            try:
                drop_keys(self.config.redis_url, self.config.instance)
            finally:
                drop_topology(self.config.amqp_url, self.config.instance)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._mongo_port = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
