"""Command lanes: which partition a command travels in, and which instance of a service owns which.

Competing consumers on one queue would handle two sends of one conversation at the same time on two
instances, and their events could leave in the wrong order. So a service's commands are split into
`Topology.partitions` lanes (one quorum queue each, single active consumer): a command goes to the
lane of what it is about (its socket, conversation, order or file), so everything about one
conversation is handled by one instance at a time, in arrival order, while the lanes spread over
the instances. Pure functions only; `LaneConsumer` does the I/O.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable

from relay_contracts import Envelope

# what a command is about, first match wins: a socket's presence reports (connect, conversations it
# tracks, disconnect) stay in one lane, in order; then conversations, orders, uploads, replicas.
# Commands about none of these go to any lane.
PARTITION_FIELDS = ("sid", "conversationId", "orderId", "fileId", "replica")


def partition_key(envelope: Envelope) -> str | None:
    for name in PARTITION_FIELDS:
        value = envelope.data.get(name)
        if isinstance(value, str) and value:
            return f"{envelope.tenant}/{value}"
    return None


def _weight(*parts: object) -> int:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def partition_of(envelope: Envelope, partitions: int) -> int:
    key = partition_key(envelope)
    if key is None:
        return random.randrange(partitions)  # spreads load; not a secret
    return _weight(key) % partitions


def assign(members: Iterable[str], partitions: int) -> dict[int, str]:
    """Lane -> owning member: balanced (no member owns more than ceil(P/N)) and stable (rendezvous
    hashing, so a member joining or leaving moves few lanes). Every member computes the same answer
    from the same membership."""
    alive = sorted(set(members))
    if not alive:
        return {}
    capacity = -(-partitions // len(alive))
    load = dict.fromkeys(alive, 0)
    owners: dict[int, str] = {}
    # strongest (lane, member) affinities first, each member up to its capacity
    pairs = sorted(((_weight(m, lane), lane, m) for lane in range(partitions) for m in alive), reverse=True)
    for _, lane, member in pairs:
        if lane not in owners and load[member] < capacity:
            owners[lane] = member
            load[member] += 1
    return owners
