"""Invariant 4 for RabbitMQ: a stack on its own broker node, which is stopped and started again.
While it is down, posts fail fast with UNAVAILABLE and replicas report unready; when it returns,
every process reconnects by itself, the replicas' event queues and bindings come back, and the
client's retry lands exactly once."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from relay_devstack import Stack
from relay_devstack.stack import free_port
from relay_sdk import RelayClient
from relay_sdk.client import RelayError

from tests.e2e.conftest import relay_stack
from tests.e2e.outages import delivered_once_in_order, wait_readiness

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("rabbitmq-server") is None or os.geteuid() != 0,
        reason="needs Debian's rabbitmq-server and root to run a private broker node as the rabbitmq user",
    ),
]


class PrivateRabbit:
    """A throwaway RabbitMQ node on its own port and data directory (the shared broker is untouched)."""

    def __init__(self) -> None:
        self.port = free_port()
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
            "RABBITMQ_NODENAME": f"relaytest{self.port}@localhost",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
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

    def start(self, timeout: float = 60) -> None:
        launcher = subprocess.Popen(["rabbitmq-server"], env=self.env(), cwd=self.dir, stdout=subprocess.DEVNULL)
        self.launchers.append(launcher)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "private rabbitmq-server did not start"
                time.sleep(0.25)

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

    def stop(self, timeout: float = 30) -> None:
        pids = self._beam_pids()
        for pid in pids:
            os.kill(pid, signal.SIGTERM)  # the Erlang VM shuts the node down cleanly on SIGTERM
        deadline = time.monotonic() + timeout
        while any(Path(f"/proc/{pid}").exists() for pid in pids):
            assert time.monotonic() < deadline, "private rabbitmq-server did not stop"
            time.sleep(0.2)
        for launcher in self.launchers:  # the script and `su` around the VM exit with it
            launcher.wait(10)
        self.launchers.clear()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def broker_stack(tmp_path_factory) -> Iterator[tuple[Stack, PrivateRabbit]]:
    rabbit = PrivateRabbit()
    rabbit.start()
    instance, logs = f"t-amqp-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("broker-restart-logs")
    try:
        # the private broker goes away with its data: no topology to drop
        with relay_stack(
            instance,
            logs,
            services=("message",),
            amqp_url=rabbit.url,
            env={"RPC_TIMEOUT_SECONDS": "2"},
            drop_topology=False,
        ) as running:
            yield running, rabbit
    finally:
        rabbit.remove()


async def test_broker_restart_fails_fast_then_everything_recovers(broker_stack, mint):
    stack, rabbit = broker_stack
    visitor = RelayClient(stack.gateway_urls[0], token=mint("v-amqp", "visitor"))
    agent = RelayClient(stack.gateway_urls[1], token=mint("a-amqp", "commercial"))
    chat_id = (await visitor.open_chat())["chatId"]
    async with agent.socket() as sock:
        await sock.join(chat_id)
        await visitor.post(
            "/v2/messages", {"chatId": chat_id, "content": "before", "clientMessageId": "b0"}, expect=201
        )
        await sock.wait_for("message:new")

        rabbit.stop()
        started = time.monotonic()
        with pytest.raises(RelayError) as down:
            await visitor.post("/v2/messages", {"chatId": chat_id, "content": "during", "clientMessageId": "b1"})
        assert down.value.status == 503 and down.value.code == "UNAVAILABLE"
        assert time.monotonic() - started < 5
        await wait_readiness(stack.gateway_urls, ready_now=False, timeout=15, what="a replica stayed ready")

        rabbit.start()
        everyone = [*stack.gateway_urls, *(stack.ops_url(name) for name in stack.instances("message"))]
        await wait_readiness(everyone, ready_now=True, timeout=60, what="processes did not recover")

        retried = await visitor.post(
            "/v2/messages", {"chatId": chat_id, "content": "during", "clientMessageId": "b1"}, expect=201
        )
        assert retried["seq"] == 2
        # the agent's replica re-created its event queue and bindings: the event arrives, once
        await delivered_once_in_order(sock, visitor, chat_id, ["before", "during"])
    await visitor.close()
    await agent.close()
