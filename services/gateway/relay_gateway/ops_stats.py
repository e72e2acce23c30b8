"""Replica heartbeats in Redis and the admin-only `GET /ops/stats` that aggregates them.

Every replica writes a snapshot of what it knows (connections, rooms with local members, presence
by role per tenant, messages and events per second, delivery latency, a short history of those
rates) to `<instance>:ops:replica:<id>` every `HEARTBEAT_SECONDS`, with a TTL, and scores itself in
the `<instance>:ops:replicas` sorted set. Any replica can then list all live replicas: one that
stops heartbeating drops out after `STALE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any, cast

from prometheus_client.metrics import MetricWrapperBase
from relay_auth import Principal
from relay_contracts import ErrorCode, RelayError, presence, utcnow_iso
from relay_log import get_logger
from starlette.requests import Request
from starlette.responses import JSONResponse

from relay_gateway import metrics
from relay_gateway.context import Gateway
from relay_gateway.rest.edge import caller, gateway
from relay_gateway.rooms import SEP

log = get_logger(__name__)

HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 10.0
HISTORY_SAMPLES = 90  # three minutes at one sample every two seconds
ROOMS_PER_TENANT = 200
USERS_PER_ROLE = 5000
SERVICE_TIMEOUT_SECONDS = 2.0


def _keys(gw: Gateway) -> tuple[str, str]:
    prefix = f"{gw.settings.relay_instance}:ops"
    return f"{prefix}:replicas", f"{prefix}:replica:"


def _total(metric: MetricWrapperBase, sample_name: str, **labels: str) -> float:
    """Sum of a metric's samples named `sample_name` whose labels include `labels`."""
    total = 0.0
    for family in metric.collect():
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _buckets(metric: MetricWrapperBase) -> list[tuple[float, float]]:
    out = []
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                out.append((float(sample.labels["le"]), sample.value))
    return sorted(out)


def _percentile(buckets: list[tuple[float, float]], fraction: float) -> float | None:
    """Upper bound of the bucket holding the `fraction` quantile of cumulative bucket counts."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    target = buckets[-1][1] * fraction
    for bound, count in buckets:
        if count >= target:
            return bound if bound != float("inf") else None
    return None


class Counters:
    """Counter readings at one instant; differences of two give rates."""

    def __init__(self) -> None:
        self.at = time.monotonic()
        self.sent = _total(metrics.COMMANDS, "relay_gateway_commands_total", type="message.send")
        self.delivered = _total(metrics.EVENTS_OUT, "relay_gateway_events_out_total")
        self.latency_sum = _total(metrics.DELIVERY_SECONDS, "relay_gateway_delivery_seconds_sum")
        self.latency_count = _total(metrics.DELIVERY_SECONDS, "relay_gateway_delivery_seconds_count")
        self.buckets = _buckets(metrics.DELIVERY_SECONDS)


class ReplicaStats:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.started_at = utcnow_iso()
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_SAMPLES)
        self._previous = Counters()

    def sample(self) -> dict[str, Any]:
        now = Counters()
        before, self._previous = self._previous, now
        seconds = max(now.at - before.at, 1e-6)
        count = now.latency_count - before.latency_count
        window = [(bound, c - b) for (bound, c), (_, b) in zip(now.buckets, before.buckets, strict=False)]
        point = {
            "t": time.time(),
            "messagesPerSecond": round((now.sent - before.sent) / seconds, 3),
            "eventsPerSecond": round((now.delivered - before.delivered) / seconds, 3),
            "latencyMs": round((now.latency_sum - before.latency_sum) / count * 1000, 3) if count > 0 else None,
            "latencyP95Ms": _ms(_percentile(window, 0.95)) if count > 0 else None,
        }
        self.history.append(point)
        return point

    def snapshot(self) -> dict[str, Any]:
        gw = self.gw
        point = self.sample()
        namespaces: dict[str, int] = {}
        tenants: dict[str, dict[str, Any]] = {}
        anonymous = 0
        for conn in list(gw.connections.values()):
            namespaces[conn.namespace] = namespaces.get(conn.namespace, 0) + 1
            principal = conn.principal
            if principal is None:
                anonymous += 1
                continue
            tenant = tenants.setdefault(principal.tenant, {"presence": {}, "rooms": {}})
            for role in principal.roles or frozenset({"none"}):
                entry = tenant["presence"].setdefault(role, {"sockets": 0, "users": set()})
                entry["sockets"] += 1
                if len(entry["users"]) < USERS_PER_ROLE:
                    entry["users"].add(principal.user_id)
        room_count = 0
        for namespace, rooms in getattr(gw.sio.manager, "rooms", {}).items():
            for room, members in rooms.items():
                if not isinstance(room, str) or SEP not in room:
                    continue  # a socket's own sid room, or the namespace's None room
                room_count += 1
                tenant_id, wire = room.split(SEP, 1)
                per_tenant = tenants.setdefault(tenant_id, {"presence": {}, "rooms": {}})["rooms"]
                if len(per_tenant) < ROOMS_PER_TENANT:
                    per_tenant[f"{namespace} {wire}"] = len(members)
        for tenant in tenants.values():
            for entry in tenant["presence"].values():
                entry["users"] = sorted(entry["users"])
        return {
            "replicaId": gw.settings.replica_id,
            "url": f"http://{gw.settings.gateway_host}:{gw.settings.gateway_port}",
            "startedAt": self.started_at,
            "heartbeatAt": utcnow_iso(),
            "connections": len(gw.connections),
            "anonymousConnections": anonymous,
            "namespaces": namespaces,
            "rooms": room_count,
            "bindings": len(gw.delivery.interest.patterns()),
            **{k: point[k] for k in ("messagesPerSecond", "eventsPerSecond", "latencyMs", "latencyP95Ms")},
            "history": list(self.history),
            "tenants": tenants,
        }

    async def beat(self) -> None:
        zset, prefix = _keys(self.gw)
        body = json.dumps(self.snapshot())
        replica = self.gw.settings.replica_id
        async with self.gw.redis.pipeline(transaction=False) as pipe:
            pipe.set(prefix + replica, body, ex=int(STALE_SECONDS))
            pipe.zadd(zset, {replica: time.time()})
            pipe.zremrangebyscore(zset, "-inf", time.time() - 6 * STALE_SECONDS)
            await pipe.execute()

    async def run(self, _: Gateway) -> None:
        while True:
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("ops.heartbeat_failed", exc_info=True)
            await asyncio.sleep(HEARTBEAT_SECONDS)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


async def live_replicas(gw: Gateway) -> list[dict[str, Any]]:
    zset, prefix = _keys(gw)
    ids = cast(list[str], await gw.redis.zrangebyscore(zset, time.time() - STALE_SECONDS, "+inf"))
    if not ids:
        return []
    bodies = await gw.redis.mget([prefix + i for i in ids])
    return sorted((json.loads(b) for b in bodies if b), key=lambda r: str(r["replicaId"]))


def aggregate(replicas: list[dict[str, Any]], tenant: str, answered_by: str) -> dict[str, Any]:
    """What `/ops/stats` answers: platform-level replica figures, presence and rooms of `tenant` only."""
    roles: dict[str, dict[str, Any]] = {}
    rooms: dict[str, int] = {}
    users: set[str] = set()
    sockets = 0
    public = []
    for replica in replicas:
        mine = replica.get("tenants", {}).get(tenant, {})
        for role, entry in mine.get("presence", {}).items():
            agg = roles.setdefault(role, {"sockets": 0, "users": set()})
            agg["sockets"] += entry["sockets"]
            agg["users"].update(entry["users"])
            users.update(entry["users"])
            sockets += entry["sockets"]
        for room, members in mine.get("rooms", {}).items():
            rooms[room] = rooms.get(room, 0) + members
        public.append({k: v for k, v in replica.items() if k != "tenants"})

    def total(name: str) -> float:
        return round(sum(r.get(name) or 0 for r in public), 3)

    latencies = [(r["latencyMs"], r["eventsPerSecond"]) for r in public if r.get("latencyMs") is not None]
    weight = sum(w for _, w in latencies)
    mean_latency = (
        round(sum(lat * w for lat, w in latencies) / weight, 3)
        if weight
        else (round(sum(lat for lat, _ in latencies) / len(latencies), 3) if latencies else None)
    )
    by_role = {role: {"users": len(v["users"]), "sockets": v["sockets"]} for role, v in sorted(roles.items())}
    top_rooms = sorted(rooms.items(), key=lambda kv: (-kv[1], kv[0]))[:100]
    return {
        "generatedAt": utcnow_iso(),
        "answeredBy": answered_by,
        "tenant": tenant,
        "totals": {
            "replicas": len(public),
            "connections": int(total("connections")),
            "rooms": int(total("rooms")),
            "messagesPerSecond": total("messagesPerSecond"),
            "eventsPerSecond": total("eventsPerSecond"),
            "latencyMs": mean_latency,
        },
        "replicas": public,
        "presence": {"users": len(users), "sockets": sockets, "byRole": by_role},
        "rooms": [{"namespace": k.split(" ", 1)[0], "room": k.split(" ", 1)[1], "members": n} for k, n in top_rooms],
    }


async def _service(gw: Gateway, principal: Principal, command: str) -> dict[str, Any] | None:
    """A service's own answer, or None when it does not answer in time (the dashboard shows it missing)."""
    try:
        answer = await asyncio.wait_for(gw.bus.call(principal, command, {}), SERVICE_TIMEOUT_SECONDS)
    except (RelayError, TimeoutError):
        return None
    return answer if isinstance(answer, dict) else None


async def presence_service(gw: Gateway, principal: Principal) -> dict[str, Any] | None:
    """The presence service's view of the caller's tenant (users by role, sockets, active conversations)."""
    stats, statistics = await asyncio.gather(
        _service(gw, principal, presence.STATS), _service(gw, principal, presence.STATISTICS)
    )
    if stats is None:
        return None
    return {
        "totalUsers": stats.get("totalUsers"),
        "totalSockets": stats.get("totalSockets"),
        "usersByRole": stats.get("usersByRole", {}),
        "activeConversations": (statistics or {}).get("conversacionesActivas"),
    }


async def ops_stats(request: Request) -> JSONResponse:
    """Admins only: every live replica's figures, and presence and rooms of the caller's tenant."""
    principal = await caller(request)
    if not principal.is_admin:
        raise RelayError(ErrorCode.PERMISSION_DENIED, "ops stats are for admins")
    gw = gateway(request)
    replicas, service = await asyncio.gather(live_replicas(gw), presence_service(gw, principal))
    body = aggregate(replicas, principal.tenant, gw.settings.replica_id)
    body["presenceService"] = service
    return JSONResponse(body)
