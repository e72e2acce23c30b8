"""/ops/stats aggregation: replica figures summed, presence and rooms of the caller's tenant only."""

from __future__ import annotations

from typing import Any

from relay_gateway.ops_stats import _percentile, aggregate


def replica(rid: str, connections: int, mps: float, latency: float | None, tenants: dict[str, Any]) -> dict[str, Any]:
    return {
        "replicaId": rid,
        "url": f"http://127.0.0.1/{rid}",
        "connections": connections,
        "rooms": sum(len(t.get("rooms", {})) for t in tenants.values()),
        "messagesPerSecond": mps,
        "eventsPerSecond": mps * 2,
        "latencyMs": latency,
        "history": [],
        "tenants": tenants,
    }


def presence(role: str, *users: str, sockets: int | None = None) -> dict[str, Any]:
    return {role: {"sockets": sockets if sockets is not None else len(users), "users": list(users)}}


def test_totals_sum_replicas_and_presence_counts_each_user_once() -> None:
    a = replica(
        "gw-a",
        3,
        2.0,
        10.0,
        {
            "acme": {"presence": presence("visitor", "v1", "v2"), "rooms": {"/ chat:c1": 2}},
            "globex": {"presence": presence("visitor", "g1"), "rooms": {"/ chat:secret": 1}},
        },
    )
    b = replica(
        "gw-b",
        2,
        1.0,
        None,
        {"acme": {"presence": {**presence("visitor", "v1"), **presence("agent", "a1")}, "rooms": {"/ chat:c1": 1}}},
    )
    stats = aggregate([a, b], "acme", "gw-a")
    assert stats["totals"]["replicas"] == 2
    assert stats["totals"]["connections"] == 5
    assert stats["totals"]["messagesPerSecond"] == 3.0
    assert stats["totals"]["latencyMs"] == 10.0  # a replica with no deliveries has no latency to average
    # v1 has sockets on both replicas: one user, two sockets
    assert stats["presence"]["byRole"] == {"agent": {"users": 1, "sockets": 1}, "visitor": {"users": 2, "sockets": 3}}
    assert stats["presence"]["users"] == 3
    assert stats["rooms"] == [{"namespace": "/", "room": "chat:c1", "members": 3}]
    # nothing of another tenant leaks: neither its rooms nor its users nor the per-tenant breakdown
    text = repr(stats)
    assert "globex" not in text and "secret" not in text and "g1" not in text
    assert all("tenants" not in r for r in stats["replicas"])


def test_latency_is_weighted_by_deliveries() -> None:
    a = replica("gw-a", 0, 1.0, 10.0, {})  # 2 events/s
    b = replica("gw-b", 0, 3.0, 30.0, {})  # 6 events/s
    assert aggregate([a, b], "acme", "gw-a")["totals"]["latencyMs"] == 25.0


def test_p95_is_the_bucket_that_holds_it() -> None:
    buckets = [(0.005, 50.0), (0.01, 90.0), (0.025, 99.0), (float("inf"), 100.0)]
    assert _percentile(buckets, 0.95) == 0.025
    assert _percentile(buckets, 0.5) == 0.005
    assert _percentile([(0.005, 0.0), (float("inf"), 0.0)], 0.95) is None


def test_a_replica_snapshot_splits_presence_and_rooms_by_tenant() -> None:
    from types import SimpleNamespace

    from relay_auth import Principal
    from relay_gateway.context import Connection
    from relay_gateway.ops_stats import ReplicaStats

    def conn(sid: str, user: str, tenant: str, *roles: str) -> Connection:
        return Connection(sid, "/", Principal(user_id=user, tenant=tenant, roles=frozenset(roles)))

    connections = {
        "s1": conn("s1", "v1", "acme", "visitor"),
        "s2": conn("s2", "v1", "acme", "visitor"),  # a second tab of the same visitor
        "s3": conn("s3", "a1", "acme", "commercial"),
        "s4": conn("s4", "g1", "globex", "visitor"),
        "s5": Connection("s5", "/", None),  # not authenticated yet (seed-003 late auth)
    }
    rooms = {
        "/": {
            None: {"s1": "e1", "s2": "e2"},  # the namespace's everyone-room
            "s1": {"s1": "e1"},  # a socket's own room
            "acme|chat:c1": {"s1": "e1", "s3": "e3"},
            "globex|chat:c1": {"s4": "e4"},  # same wire name, other tenant
        }
    }
    gw = SimpleNamespace(
        connections=connections,
        sio=SimpleNamespace(manager=SimpleNamespace(rooms=rooms)),
        settings=SimpleNamespace(replica_id="gw-a", gateway_host="127.0.0.1", gateway_port=3000),
        delivery=SimpleNamespace(interest=SimpleNamespace(patterns=lambda: ["acme.conv.c1.#"])),
    )
    snap = ReplicaStats(gw).snapshot()  # type: ignore[arg-type]
    assert snap["connections"] == 5 and snap["anonymousConnections"] == 1 and snap["rooms"] == 2
    assert snap["tenants"]["acme"]["presence"] == {
        "visitor": {"sockets": 2, "users": ["v1"]},
        "commercial": {"sockets": 1, "users": ["a1"]},
    }
    assert snap["tenants"]["acme"]["rooms"] == {"/ chat:c1": 2}
    assert snap["tenants"]["globex"]["rooms"] == {"/ chat:c1": 1}
    stats = aggregate([snap], "acme", "gw-a")
    assert stats["rooms"] == [{"namespace": "/", "room": "chat:c1", "members": 2}]
    assert stats["presence"]["byRole"]["visitor"] == {"users": 1, "sockets": 2}
