"""Invariant 4 on a RabbitMQ cluster: a stack on three private nodes (quorum command queues replicated
on all three) loses the node every process is connected to, killed without a goodbye, while a chat
has traffic. Every process moves to another node by itself (AMQP_URL lists the three), and no
message the platform accepted is lost, stored twice, or missing for the follower.

The processes reconnect within a few hundred milliseconds, which met three races of the cluster:
- before the lanes' new Raft leaders are elected: on RabbitMQ 3.10 a channel whose first command
  reaches a lane then is nacked for that lane for good, so every command was refused after the loss
  (`Broker._renew_command_channel` is the fix);
- before the survivors' cleanup of the lost node's transient queues, which deletes them by name: a
  private queue (replies, event delivery, roll call) declared again under its old name was deleted
  under its process, whose calls then timed out (relay_broker.private_queues gives each declaration
  a fresh name);
- before all of a process's channels are restored: a handler whose event channel was not back yet
  failed, and its command was dead-lettered within milliseconds though applied (`Broker.restored`).
The nodes' logs and a last `list_queues` (leader, members, online) are kept with the stack's logs."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from relay_devstack import Stack
from relay_sdk import RelayClient

from tests.e2e.conftest import relay_stack
from tests.e2e.outages import wait_readiness
from tests.e2e.rabbit import CAN_RUN, WHY_NOT, PrivateRabbit
from tests.e2e.traffic import Poster, Roamer, all_history

pytestmark = [
    pytest.mark.e2e,
    # the private nodes share only the Erlang cookie and epmd with the machine's broker: their own names,
    # ports and data directories, and they are found (and killed) by their own environment (rabbit.py)
    pytest.mark.skipif(not CAN_RUN, reason=WHY_NOT),
]

LIMITS = "message=1000/10s,rest_write=1000/10s"  # one poster sends fast


def connections(nodes: list[PrivateRabbit], via: PrivateRabbit) -> list[int]:
    """How many client connections each node holds (asked of the running node `via`), by AMQP port."""
    listed = via.ctl("-s", "list_connections", "port")
    ports = listed.stdout.split() if listed.returncode == 0 else []
    return [ports.count(str(node.port)) for node in nodes]


def quorum_report(via: PrivateRabbit) -> str:
    """Every queue's type, Raft leader, members and online members, as a surviving node sees them."""
    try:
        listed = via.ctl("list_queues", "name", "type", "leader", "members", "online", "messages", timeout=15)
    except subprocess.TimeoutExpired:
        return "list_queues timed out\n"
    return listed.stdout + listed.stderr


def form_cluster(nodes: list[PrivateRabbit]) -> None:
    """The first node boots alone; the others join it as they boot (classic config discovery)."""
    for node in nodes:
        node.discover(nodes)
    nodes[0].start(90)
    for node in nodes[1:]:
        node.launch()
    for node in nodes[1:]:
        node.wait_open(90)
    status = nodes[0].ctl("cluster_status", "--formatter", "json")
    running = json.loads(status.stdout).get("running_nodes", []) if status.returncode == 0 else []
    if sorted(running) != sorted(n.node for n in nodes):
        pytest.skip(f"a 3-node RabbitMQ cluster did not form here (running: {running}; {status.stderr[-300:]})")


@pytest.fixture(scope="module")
def cluster_stack(tmp_path_factory) -> Iterator[tuple[Stack, list[PrivateRabbit]]]:
    nodes = [PrivateRabbit() for _ in range(3)]
    instance, logs = f"t-clu-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("broker-cluster-logs")
    try:
        form_cluster(nodes)
        urls = ",".join(f"{node.url}?reconnect_interval=0.5" for node in nodes)
        # the private cluster goes away with its data: no topology to drop
        with relay_stack(
            instance,
            logs,
            services=("message",),
            amqp_url=urls,
            env={"RPC_TIMEOUT_SECONDS": "3", "RATE_LIMITS": LIMITS, "LOG_LEVEL": "DEBUG"},
            drop_topology=False,
        ) as running:
            yield running, nodes
    finally:
        (logs / "queues.txt").write_text(quorum_report(nodes[1]))
        for node in nodes:
            node.keep_log(logs)  # the nodes' logs stay with the stack's (their data directories go)
            node.remove()


async def test_losing_a_cluster_node_under_traffic_loses_no_accepted_message(cluster_stack, mint):
    stack, nodes = cluster_stack  # every process connects to the first node it is given, nodes[0]
    tenant = f"clu-{uuid.uuid4().hex[:6]}"
    visitor_token = mint("visitor-clu", "visitor", tenant=tenant)
    opener = RelayClient(stack.gateway_urls[0], token=visitor_token)
    chat_id = (await opener.open_chat("cluster"))["chatId"]
    follower = Roamer(stack, mint("agent-clu", "commercial", tenant=tenant), chat_id, 1)
    await follower.start()
    poster = Poster(stack, visitor_token, chat_id, "visitor")
    poster.start()
    try:
        await asyncio.sleep(1)
        before = len(poster.accepted)
        assert before > 0
        held = connections(nodes, via=nodes[1])
        assert held[0] >= len(stack.gateway_urls) + len(stack.instances("message")) and held[1:] == [0, 0]
        lost_at = time.monotonic()
        await asyncio.to_thread(nodes[0].stop, signal.SIGKILL)  # every process was connected to it
        everyone = [*stack.gateway_urls, *(stack.ops_url(name) for name in stack.instances("message"))]
        await wait_readiness(everyone, ready_now=True, timeout=60, what="processes did not move to another node")
        deadline = time.monotonic() + 30
        while len(poster.accepted) < before + 20:  # traffic flows again, through the surviving nodes
            poster.check()
            stalled = f"traffic stalled: {len(poster.accepted)} accepted, {poster.retries} retries"
            assert time.monotonic() < deadline, stalled
            await asyncio.sleep(0.1)
        recovered_after = time.monotonic() - lost_at
        assert sum(connections(nodes, via=nodes[1])[1:]) == held[0]  # every connection moved to a survivor
    finally:
        await poster.stop()

    stored = await all_history(opener, chat_id)
    assert sorted(m["content"] for m in stored) == sorted(poster.accepted)  # nothing lost, nothing twice
    assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))
    assert [m["content"] for m in stored] == poster.accepted
    try:
        held = await follower.follower.wait_for_count(len(stored), timeout=20)
        assert [m["messageId"] for m in held] == [m["messageId"] for m in stored]
    finally:
        await follower.stop()
        await opener.close()
    print(f"\nnode loss: {len(stored)} accepted, {poster.retries} retries, traffic back in {recovered_after:.1f}s")
