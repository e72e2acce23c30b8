"""Which lane a command takes and which instance owns which lane (libs/relay_broker/lanes.py)."""

from __future__ import annotations

from relay_broker.lanes import assign, partition_of
from relay_contracts import Envelope


def env(tenant: str = "acme", **data: object) -> Envelope:
    return Envelope(type="message.send", tenant=tenant, correlationId="c", data=data)


def test_commands_about_one_conversation_share_a_lane_and_tenants_are_kept_apart():
    lanes = {partition_of(env(conversationId="c42", content=str(i)), 8) for i in range(20)}
    assert len(lanes) == 1
    spread = {partition_of(env(conversationId=f"c{i}"), 8) for i in range(200)}
    assert spread == set(range(8))
    by_tenant = {partition_of(env(tenant=f"t{i}", conversationId="same"), 8) for i in range(50)}
    assert len(by_tenant) > 1  # the key is tenant-scoped


def test_an_order_a_file_and_a_socket_each_keep_their_lane():
    for field in ("orderId", "fileId", "sid"):
        assert len({partition_of(env(**{field: "x1"}, n=i), 16) for i in range(10)}) == 1


def test_lanes_are_shared_evenly_and_stay_put_when_a_member_joins():
    for n in range(1, 7):
        owners = assign([f"m{i}" for i in range(n)], 8)
        loads = [list(owners.values()).count(f"m{i}") for i in range(n)]
        assert sorted(owners) == list(range(8))
        assert max(loads) - min(loads) <= 2 and max(loads) <= -(-8 // n)
    before = assign(["a", "b"], 16)
    after = assign(["a", "b", "c"], 16)
    moved = [lane for lane in before if before[lane] != after[lane]]
    # the newcomer's share (at most ceil(16/3) = 6) moves, and only a couple more to even out the rest
    assert list(after.values()).count("c") >= 5 and len(moved) <= 6 + 2
    assert assign(["b", "a"], 16) == before  # every member computes the same answer
    assert assign([], 4) == {}
