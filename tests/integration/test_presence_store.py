"""Presence handlers against real Redis: tabs on two replicas, reordering, reaping, grace, queries."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from redis.asyncio import Redis
from relay_contracts import Envelope
from relay_contracts import presence as p
from relay_contracts.envelope import Actor
from relay_presence import handlers as h
from relay_presence.adapters.store import PresenceStore

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def env():
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    instance = f"it-{uuid.uuid4().hex[:8]}"
    published: list[tuple[str, Envelope]] = []

    async def publish(key: str, event: Envelope) -> None:
        published.append((key, event))

    clock = Clock()
    deps = h.Deps(PresenceStore(redis, instance), publish, grace_seconds=2.0, dead_after_seconds=5.0, clock=clock)
    yield deps, published, clock
    keys = [k async for k in redis.scan_iter(f"{instance}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def cmd(type_: str, user: str, data: dict, tenant: str = "acme") -> Envelope:
    return Envelope(
        type=type_, tenant=tenant, correlationId="c1", actor=Actor(userId=user, roles=("admin",)), data=data
    )


def connect(user: str, sid: str, replica: str, tenant: str = "acme") -> Envelope:
    return cmd(
        p.CONNECT,
        user,
        {"sid": sid, "replica": replica, "user": {"userId": user, "roles": ["admin"], "email": f"{user}@x.io"}},
        tenant,
    )


def transitions(published: list[tuple[str, Envelope]]) -> list[tuple[str, str, int]]:
    return [(e.data["userId"], e.data["status"], e.data["activeUsersCount"]) for _, e in published]


async def test_three_tabs_on_two_replicas_announce_once_each_way(env):
    deps, published, clock = env
    await h.connect(connect("ana", "s1", "gw-a/1"), deps)
    await h.connect(connect("ana", "s2", "gw-a/1"), deps)
    await h.connect(connect("ana", "s3", "gw-b/1"), deps)
    assert transitions(published) == [("ana", "online", 1)]
    assert published[0][0] == "acme.tenant._.presence.changed"
    assert published[0][1].data["user"] == {"userId": "ana", "roles": ["admin"]}  # no email to the tenant
    for sid, replica in (("s1", "gw-a/1"), ("s3", "gw-b/1")):
        await h.disconnect(cmd(p.DISCONNECT, "ana", {"sid": sid, "replica": replica}), deps)
    clock.now += 10
    await h.sweep(deps, started_at=clock.now)
    assert len(published) == 1  # one tab is still open
    await h.disconnect(cmd(p.DISCONNECT, "ana", {"sid": "s2", "replica": "gw-a/1"}), deps)
    await h.sweep(deps, started_at=clock.now)
    assert len(published) == 1  # grace period
    clock.now += 2
    await h.sweep(deps, started_at=clock.now)
    assert transitions(published) == [("ana", "online", 1), ("ana", "offline", 0)]


async def test_disconnect_handled_before_its_connect_leaves_no_ghost(env):
    deps, published, _ = env
    await h.disconnect(cmd(p.DISCONNECT, "bo", {"sid": "s9", "replica": "gw-a/1"}), deps)
    await h.connect(connect("bo", "s9", "gw-a/1"), deps)
    assert published == []
    assert (await h.active_users(cmd(p.ACTIVE_USERS, "bo", {}), deps))["count"] == 0


async def test_dead_replica_is_reaped_and_its_users_announced_offline(env):
    deps, published, clock = env
    await h.heartbeat(cmd(p.HEARTBEAT, "x", {"replica": "gw-a/1", "replicaId": "gw-a"}), deps)
    await h.heartbeat(cmd(p.HEARTBEAT, "x", {"replica": "gw-b/1", "replicaId": "gw-b"}), deps)
    await h.connect(connect("ana", "s1", "gw-a/1"), deps)
    await h.connect(connect("bo", "s2", "gw-a/1"), deps)
    await h.connect(connect("bo", "s3", "gw-b/1"), deps)
    clock.now += 6
    await h.heartbeat(cmd(p.HEARTBEAT, "x", {"replica": "gw-b/1", "replicaId": "gw-b"}), deps)
    await h.sweep(deps, started_at=0)  # gw-a is silent: reaped; ana enters grace
    clock.now += 2
    await h.sweep(deps, started_at=0)
    assert transitions(published)[-1] == ("ana", "offline", 1)
    users = (await h.active_users(cmd(p.ACTIVE_USERS, "bo", {}), deps))["users"]
    assert [(u["userId"], u["socketCount"]) for u in users] == [("bo", 1)]


async def test_restarted_replica_reaps_its_previous_incarnation_without_flapping_reconnects(env):
    deps, published, clock = env
    await h.heartbeat(cmd(p.HEARTBEAT, "x", {"replica": "gw-a/boot1", "replicaId": "gw-a"}), deps)
    await h.connect(connect("ana", "s1", "gw-a/boot1"), deps)
    # the replica comes back as a new incarnation and ana reconnects to it within the grace period
    clock.now += 1
    await h.heartbeat(cmd(p.HEARTBEAT, "x", {"replica": "gw-a/boot2", "replicaId": "gw-a"}), deps)
    await h.connect(connect("ana", "s2", "gw-a/boot2"), deps)
    clock.now += 5
    await h.sweep(deps, started_at=0)
    assert transitions(published) == [("ana", "online", 1)]
    assert (await h.lookup(cmd(p.LOOKUP, "x", {"userIds": ["ana"]}), deps))["ana"]["sockets"] == 1


async def test_tenants_never_see_each_other(env):
    deps, _, _ = env
    await h.connect(connect("ana", "s1", "gw-a/1", tenant="acme"), deps)
    await h.connect(connect("ana", "s2", "gw-a/1", tenant="globex"), deps)
    await h.connect(connect("zed", "s3", "gw-a/1", tenant="globex"), deps)
    acme = await h.stats(cmd(p.STATS, "ana", {}, tenant="acme"), deps)
    globex = await h.stats(cmd(p.STATS, "ana", {}, tenant="globex"), deps)
    assert acme["totalUsers"] == 1 and globex["totalUsers"] == 2


async def test_concurrent_tabs_of_one_user_announce_once(env):
    deps, published, _ = env
    await asyncio.gather(*(h.connect(connect("ana", f"s{i}", "gw-a/1"), deps) for i in range(10)))
    assert transitions(published) == [("ana", "online", 1)]
    stats = await h.statistics(cmd(p.STATISTICS, "ana", {}), deps)
    assert stats["usuariosConectados"] == 1 and stats["totalSockets"] == 10


async def test_away_idle_and_conversation_counts(env):
    deps, published, clock = env
    deps.idle_seconds = 60
    await h.connect(connect("ana", "s1", "gw-a/1"), deps)
    await h.track_conversation(
        cmd(p.TRACK_CONVERSATION, "ana", {"sid": "s1", "conversationId": "c1", "joined": True}), deps
    )
    assert (await h.statistics(cmd(p.STATISTICS, "ana", {}), deps))["conversacionesActivas"] == 1
    clock.now += 61
    await h.sweep(deps, started_at=clock.now)
    assert transitions(published)[-1] == ("ana", "away", 1)
    await h.activity(cmd(p.ACTIVITY, "ana", {}), deps)
    assert transitions(published)[-1] == ("ana", "online", 1)
    await h.set_status(cmd(p.SET_STATUS, "ana", {"status": "away"}), deps)
    await h.activity(cmd(p.ACTIVITY, "ana", {}), deps)
    assert transitions(published)[-1] == ("ana", "away", 1)  # a chosen away sticks
    await h.disconnect(cmd(p.DISCONNECT, "ana", {"sid": "s1", "replica": "gw-a/1"}), deps)
    assert (await h.statistics(cmd(p.STATISTICS, "ana", {}), deps))["conversacionesActivas"] == 0


async def test_resync_adds_lost_connects_and_drops_lost_disconnects(env):
    deps, published, clock = env
    await h.connect(connect("ana", "s1", "gw-a/1"), deps)  # later its disconnect is lost
    beat = await h.heartbeat(cmd(p.HEARTBEAT, "x", {"replica": "gw-a/1", "replicaId": "gw-a", "sockets": 1}), deps)
    assert beat == {"known": 1}
    await h.disconnect(cmd(p.DISCONNECT, "old", {"sid": "s0", "replica": "gw-a/1"}), deps)  # tombstone
    listed = [
        {"sid": "s2", "tenant": "acme", "userId": "bo", "user": {"userId": "bo", "roles": ["agent"]}},
        {"sid": "s0", "tenant": "acme", "userId": "old"},  # already gone: not resurrected
    ]
    clock.now += 10
    await h.connect(connect("cy", "s3", "gw-a/1"), deps)  # connected after the replica took its list
    result = await h.sync(cmd(p.SYNC, "x", {"replica": "gw-a/1", "sockets": listed}), deps)
    assert result == {"added": 1, "removed": 1}
    clock.now += 3
    await h.sweep(deps, started_at=clock.now)
    assert transitions(published) == [
        ("ana", "online", 1),
        ("cy", "online", 2),
        ("bo", "online", 3),
        ("ana", "offline", 2),
    ]
    assert (await h.stats(cmd(p.STATS, "x", {}), deps))["usersByRole"] == {"agent": 1, "admin": 1}


async def test_a_socket_lost_from_its_replicas_index_is_counted_again_after_a_resync(env):
    deps, published, _ = env
    await h.connect(connect("ana", "s1", "gw-a/1"), deps)
    # a reap of the incarnation that raced this connect: the index is gone, the user's document kept the socket
    await deps.store.forget_replica("gw-a/1")
    beat = cmd(p.HEARTBEAT, "x", {"replica": "gw-a/1", "replicaId": "gw-a", "sockets": 1})
    assert await h.heartbeat(beat, deps) == {"known": 0}
    listed = [{"sid": "s1", "tenant": "acme", "userId": "ana", "user": {"userId": "ana", "roles": ["admin"]}}]
    await h.sync(cmd(p.SYNC, "x", {"replica": "gw-a/1", "sockets": listed}), deps)
    assert await h.heartbeat(beat, deps) == {"known": 1}  # agrees again: no resync on every other beat
    assert transitions(published) == [("ana", "online", 1)]


def batches_published(deps: h.Deps, published: list[tuple[str, Envelope]]) -> list[int]:
    """Record the events the service publishes together (a round's): the sizes of the batches."""
    sizes: list[int] = []

    async def publish_batch(events: list[tuple[str, Envelope]]) -> None:
        sizes.append(len(events))
        published.extend(events)

    deps.publish_batch = publish_batch
    return sizes


async def test_a_burst_of_connects_is_applied_in_rounds_with_exact_counts_and_one_announcement_each(env):
    deps, published, _ = env
    rounds = batches_published(deps, published)
    await h.disconnect(cmd(p.DISCONNECT, "gone", {"sid": "g1", "replica": "gw-a/1"}), deps)  # before its connect
    reports = [connect(f"u{i}", f"s{i}", "gw-a/1" if i % 2 else "gw-b/1") for i in range(60)]
    reports += [connect(f"u{i}", f"s{i}-tab{t}", "gw-b/1") for i in range(10) for t in (2, 3)]  # more tabs
    reports.append(connect("gone", "g1", "gw-a/1"))
    answers = await asyncio.gather(*(h.connect(r, deps) for r in reports))

    assert answers[-1] == {"ignored": True}
    said = transitions(published)
    assert sorted(u for u, _, _ in said) == sorted(f"u{i}" for i in range(60))  # each user once, nobody else
    assert {s for _, s, _ in said} == {"online"}
    assert [n for _, _, n in said] == list(range(1, 61))  # each count exact, as if announced one by one
    assert len(rounds) < len(said)  # they were applied together, not one by one
    stats = await h.statistics(cmd(p.STATISTICS, "u0", {}), deps)
    assert stats["usuariosConectados"] == 60 and stats["totalSockets"] == 80
    users = {
        u["userId"]: u["socketCount"] for u in (await h.active_users(cmd(p.ACTIVE_USERS, "u0", {}), deps))["users"]
    }
    assert users == {f"u{i}": 3 if i < 10 else 1 for i in range(60)}
    assert len(await deps.store.replica_sockets("gw-b/1")) == 30 + 20


async def test_a_connect_whose_user_is_busy_waits_for_the_lock_and_is_announced_once(env):
    deps, published, _ = env
    async with deps.store.locked("acme", "ana") as _:
        # another update of ana holds her lock: the round hands the report back to be applied on its own
        pending = asyncio.create_task(h.connect(connect("ana", "s1", "gw-a/1"), deps))
        other = await h.connect(connect("bo", "s2", "gw-a/1"), deps)  # not held up by ana
        assert other == {"status": "online", "sockets": 1}
        assert not pending.done()
    assert await pending == {"status": "online", "sockets": 1}
    assert sorted(transitions(published)) == [("ana", "online", 2), ("bo", "online", 1)]


async def test_a_burst_of_disconnects_announces_each_user_offline_once_with_exact_counts(env):
    deps, published, clock = env
    rounds = batches_published(deps, published)
    await h.in_rounds(deps, [])  # nothing to do is fine
    await asyncio.gather(*(h.connect(connect(f"u{i}", f"s{i}", "gw-a/1"), deps) for i in range(40)))
    await h.connect(connect("u0", "s0-tab2", "gw-a/1"), deps)  # u0 keeps a tab open
    published.clear()
    rounds.clear()
    await asyncio.gather(
        *(h.disconnect(cmd(p.DISCONNECT, f"u{i}", {"sid": f"s{i}", "replica": "gw-a/1"}), deps) for i in range(40))
    )
    assert published == []  # grace period
    clock.now += 2
    await h.sweep(deps, started_at=clock.now)
    said = transitions(published)
    assert sorted(u for u, _, _ in said) == sorted(f"u{i}" for i in range(1, 40))
    assert {s for _, s, _ in said} == {"offline"}
    assert [n for _, _, n in said] == list(range(39, 0, -1))  # 40 active, then one fewer each
    assert len(rounds) < len(said)
    assert [u["userId"] for u in (await h.active_users(cmd(p.ACTIVE_USERS, "u0", {}), deps))["users"]] == ["u0"]
    assert await deps.store.replica_sockets("gw-a/1") == [("acme", "u0", "s0-tab2")]


async def test_two_transitions_of_one_user_in_one_round_are_both_announced_with_their_own_counts(env):
    deps, published, _ = env
    deps.grace_seconds = 0  # a last socket closing announces offline at once
    await h.connect(connect("bo", "s0", "gw-a/1"), deps)
    await h.connect(connect("ana", "s1", "gw-a/1"), deps)
    published.clear()
    # arriving together: ana's only tab closes (offline), then she opens another (online)
    await asyncio.gather(
        h.disconnect(cmd(p.DISCONNECT, "ana", {"sid": "s1", "replica": "gw-a/1"}), deps),
        h.connect(connect("ana", "s2", "gw-a/1"), deps),
    )
    assert transitions(published) == [("ana", "offline", 1), ("ana", "online", 2)]
    assert (await h.lookup(cmd(p.LOOKUP, "x", {"userIds": ["ana"]}), deps))["ana"]["sockets"] == 1
