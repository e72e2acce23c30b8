"""Throwaway RabbitMQ nodes for the broker fault tests: each on its own ports and data directory (the
shared broker is untouched), started with Debian's `rabbitmq-server` as the rabbitmq user, optionally
clustered (`join`) with `rabbitmqctl`. Nodes of one machine share that user's Erlang cookie and epmd.

A private node is found by its own environment only (`RABBITMQ_NODENAME=relaytest<port>@localhost` and
its AMQP port, both unique to it): never by a name pattern, so nothing here can reach the machine's shared
node (`rabbit@localhost`, port 5672) or another run's nodes. A reaper process removes a node and its data
if the test process dies without doing so itself (SIGKILL, a second Ctrl-C, a crash)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
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
        self.reaper = subprocess.Popen(
            [sys.executable, "-c", REAPER, str(os.getpid()), self.node, str(self.port), str(self.dir)],
            cwd=ROOT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, not the reaper
        )

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

    def tls(self, ca_pem: bytes, cert_chain_pem: bytes, key_pem: bytes) -> int:
        """Add an amqps listener (a port of its own) serving this certificate; returns its port."""
        self.tls_port = free_port()
        for name, pem in (("ca.pem", ca_pem), ("server.pem", cert_chain_pem), ("server.key", key_pem)):
            (self.dir / name).write_bytes(pem)
            shutil.chown(self.dir / name, "rabbitmq", "rabbitmq")
        lines = [
            f"listeners.ssl.default = 127.0.0.1:{self.tls_port}",
            f"ssl_options.cacertfile = {self.dir / 'ca.pem'}",
            f"ssl_options.certfile = {self.dir / 'server.pem'}",
            f"ssl_options.keyfile = {self.dir / 'server.key'}",
            "ssl_options.verify = verify_none",
            "ssl_options.fail_if_no_peer_cert = false",
        ]
        with open(self.dir / "rabbitmq.conf", "a") as conf:
            conf.write("\n".join(lines) + "\n")
        return self.tls_port

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
        return beam_pids(self.node, self.port)

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

    def keep_log(self, into: Path) -> None:
        """Copy the node's log next to the stack's (the data directory goes with `remove`)."""
        for log in (self.dir / "log").glob("*.log"):
            shutil.copyfile(log, into / f"rabbit-{log.name}")

    def remove(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.reaper.kill()
        self.reaper.wait()


def beam_pids(node: str, port: int) -> list[int]:
    """The Erlang VMs of one private node: a beam process whose environment names this node and port
    exactly (whole variables, so `relaytest4000@...` is not `relaytest40001@...`)."""
    marks = {f"RABBITMQ_NODENAME={node}".encode(), f"RABBITMQ_NODE_PORT={port}".encode()}
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"beam" in (proc / "cmdline").read_bytes():
                if marks <= set((proc / "environ").read_bytes().split(b"\0")):
                    pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def reap_orphan(owner: str, node: str, port: str, data: str) -> None:
    """The reaper's body: wait for the test process `owner` (this one's parent) to go, then kill the
    node's VM and delete its data. `remove` kills the reaper first when the test cleans up itself."""
    while os.getppid() == int(owner):
        time.sleep(0.5)
    for pid in beam_pids(node, int(port)):
        os.kill(pid, signal.SIGKILL)
    time.sleep(1)  # the VM lets go of its files
    shutil.rmtree(data, ignore_errors=True)


REAPER = "import sys; from tests.e2e.rabbit import reap_orphan; reap_orphan(*sys.argv[1:])"
ROOT = Path(__file__).resolve().parents[2]
