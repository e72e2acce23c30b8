"""Throwaway RabbitMQ nodes for the broker fault tests: each on its own ports and data directory (the
shared broker is untouched), started with Debian's `rabbitmq-server` as the rabbitmq user, optionally
clustered (`join`) with `rabbitmqctl`. Nodes of one machine share that user's Erlang cookie."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from relay_devstack.stack import free_port

CAN_RUN = shutil.which("rabbitmq-server") is not None and os.geteuid() == 0
WHY_NOT = "needs Debian's rabbitmq-server and root to run private broker nodes as the rabbitmq user"


class PrivateRabbit:
    def __init__(self) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"relaytest{self.port}@localhost"
        self.dir = Path(tempfile.mkdtemp(prefix="relay-rabbit-"))
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n")
        (self.dir / "plugins").write_text("[].\n")
        shutil.chown(self.dir, "rabbitmq", "rabbitmq")
        for path in self.dir.iterdir():
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.launchers: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        d = str(self.dir)
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": f"{d}/mnesia",
            "RABBITMQ_MNESIA_DIR": f"{d}/mnesia/node",
            "RABBITMQ_FEATURE_FLAGS_FILE": f"{d}/feature_flags",
            "RABBITMQ_QUORUM_DIR": f"{d}/quorum",
            "RABBITMQ_STREAM_DIR": f"{d}/stream",
            "RABBITMQ_PLUGINS_EXPAND_DIR": f"{d}/expand",
            "RABBITMQ_LOG_BASE": f"{d}/log",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{d}/plugins",
            "RABBITMQ_CONFIG_FILE": f"{d}/rabbitmq",
        }

    def discover(self, peers: list[PrivateRabbit]) -> None:
        """Join the first of `peers` that runs when this node first boots (classic config peer
        discovery): no stop/join/start round trip afterwards."""
        lines = ["cluster_formation.peer_discovery_backend = classic_config"]
        lines += [f"cluster_formation.classic_config.nodes.{i} = {p.node}" for i, p in enumerate(peers, 1)]
        with open(self.dir / "rabbitmq.conf", "a") as conf:
            conf.write("\n".join(lines) + "\n")

    def launch(self) -> None:
        """Start the node without waiting (several nodes boot in parallel); `wait_open` after."""
        launcher = subprocess.Popen(["rabbitmq-server"], env=self.env(), cwd=self.dir, stdout=subprocess.DEVNULL)
        self.launchers.append(launcher)

    def wait_open(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"private rabbitmq-server {self.node} did not start"
                time.sleep(0.25)

    def start(self, timeout: float = 60) -> None:
        self.launch()
        self.wait_open(timeout)

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["rabbitmqctl", "-n", self.node, *args],
            env=self.env(),
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def join(self, seed: PrivateRabbit) -> None:
        """Make this (fresh, running) node a member of `seed`'s cluster."""
        for args in (("stop_app",), ("join_cluster", seed.node), ("start_app",)):
            done = self.ctl(*args)
            if done.returncode != 0:
                raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.node}: {done.stderr.strip()[-400:]}")
        self.wait_open()

    def _beam_pids(self) -> list[int]:
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and "beam" in (proc / "cmdline").read_bytes().decode(errors="ignore"):
                    if f"RABBITMQ_NODE_PORT={self.port}".encode() in (proc / "environ").read_bytes():
                        pids.append(int(proc.name))
            except OSError:
                continue
        return pids

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """SIGTERM shuts the Erlang VM down cleanly; SIGKILL is a node lost without a goodbye."""
        pids = self._beam_pids()
        for pid in pids:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while any(Path(f"/proc/{pid}").exists() for pid in pids):
            assert time.monotonic() < deadline, "private rabbitmq-server did not stop"
            time.sleep(0.2)
        for launcher in self.launchers:  # the script and `su` around the VM exit with it
            try:
                launcher.wait(10)
            except subprocess.TimeoutExpired:
                launcher.kill()
        self.launchers.clear()

    def remove(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)
