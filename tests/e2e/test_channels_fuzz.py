"""Malformed payloads to every /chat event: a clear refusal, nothing stored or broadcast, the socket lives on."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_sdk import RelayClient, RelaySocket

from tests.e2e.conftest import REDIS_URL

pytestmark = pytest.mark.e2e

T = TypeVar("T")
CHAT = "/chat"
REFUSALS = {"VALIDATION_ERROR", "PERMISSION_DENIED", "NOT_FOUND"}
WATCHED = ("new_message", "message_edited", "message_deleted", "reaction_added", "reaction_removed", "thread_created")


class LoopThread:
    """An event loop of its own, so hypothesis (synchronous) can drive long-lived async sockets."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class World:
    runner: LoopThread
    owner: RelayClient
    sock: RelaySocket
    watcher: RelaySocket
    channel_id: str
    message_id: str
    instance: str
    owner_id: str

    def reset_rate_windows(self) -> None:
        """Validation is what is under test: 150 examples must not run into the per-user rate limits."""
        with redis.Redis.from_url(REDIS_URL) as r:
            # large SCAN pages: the shared Redis may hold many other keys, and this runs for every example
            keys = list(r.scan_iter(f"{self.instance}:ratelimit:*:*{self.owner_id}*", count=5000))
            if keys:
                r.delete(*keys)

    def valid(self, event: str) -> dict[str, Any]:
        """A payload the event would accept; every example breaks at least one thing in it."""
        ref = {"channelId": self.channel_id}
        msg = {**ref, "messageId": self.message_id}
        return {
            "join_channel": ref,
            "leave_channel": ref,
            "send_message": {**ref, "text": "x"},
            "edit_message": {**msg, "text": "changed"},
            "delete_message": msg,
            "add_reaction": {**msg, "emoji": "ok"},
            "remove_reaction": {**msg, "emoji": "ok"},
            "typing_start": ref,
            "typing_stop": ref,
            "create_thread": msg,
            "join_thread": {**ref, "threadId": self.message_id},
            "sync_request": {**ref, "lastSeq": 0},
        }[event]

    async def snapshot(self) -> list[tuple[Any, ...]]:
        page = await self.owner.get(f"/v2/channels/{self.channel_id}/messages")
        return [(x["id"], x["seq"], x["text"], x["edited"], x["reactions"], x["thread"]) for x in page["messages"]]


EVENTS = (
    "join_channel",
    "leave_channel",
    "send_message",
    "edit_message",
    "delete_message",
    "add_reaction",
    "remove_reaction",
    "typing_start",
    "typing_stop",
    "create_thread",
    "join_thread",
    "sync_request",
)
REQUIRED = {"channelId", "messageId", "text", "emoji", "threadId"}

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)
not_a_string = st.one_of(
    st.integers(),
    st.booleans(),
    st.lists(st.integers(), min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), min_size=1, max_size=2),
)
bad_id = st.one_of(not_a_string, st.sampled_from(["", "a b", "../etc", "x" * 200, "é/ü", "id\n"]))
bad_list = st.one_of(
    st.integers(), st.text(max_size=5), st.lists(st.sampled_from([1, "", None, "x" * 3000]), min_size=1, max_size=3)
)
BAD: dict[str, st.SearchStrategy[Any]] = {
    "channelId": bad_id,
    "messageId": bad_id,
    "threadId": bad_id,
    "parentMessageId": bad_id,
    "text": not_a_string,
    "name": st.one_of(not_a_string, st.just("x" * 200)),
    "emoji": st.one_of(not_a_string, st.sampled_from(["", "x" * 100])),
    "mentions": bad_list,
    "attachments": bad_list,
    "links": bad_list,
    "lastSeq": st.sampled_from([-1, "x", 1.5, [1]]),
    "limit": st.sampled_from([0, -5, 10_000, "x"]),
}


@st.composite
def malformed(draw: st.DrawFn, world: World) -> tuple[str, Any]:
    event = draw(st.sampled_from(EVENTS))
    kind = draw(st.sampled_from(["not-an-object", "bad-field", "missing-field", "unknown-field"]))
    payload: Any = dict(world.valid(event))
    if kind == "not-an-object":
        payload = draw(st.one_of(scalars, st.lists(junk, max_size=3)))
    elif kind == "bad-field":
        key = draw(st.sampled_from([*payload, "threadId", "mentions", "attachments", "links", "limit", "name"]))
        payload[key] = draw(BAD[key])
    elif kind == "missing-field":
        payload.pop(draw(st.sampled_from(sorted(REQUIRED & set(payload)))))
    else:
        payload[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in payload and k != "correlationId"))] = (
            draw(junk)
        )
    return event, payload


@pytest.fixture(scope="module")
def world(stack, mint, instance) -> Iterator[World]:
    runner = LoopThread()
    owner_id, watcher_id = f"fz-{uuid.uuid4().hex[:6]}", f"fw-{uuid.uuid4().hex[:6]}"

    async def setup() -> World:
        owner = RelayClient(stack.gateway_urls[0], token=mint(owner_id, "member"))
        channel = await owner.post("/v2/channels", {"name": "fuzz", "members": [watcher_id]}, expect=201)
        sock = owner.socket(CHAT)
        await sock.connect()
        watcher = RelaySocket(stack.gateway_urls[1], namespace=CHAT, auth={"token": mint(watcher_id, "member")})
        await watcher.connect()
        sent = await sock.call("send_message", {"channelId": channel["channelId"], "text": "keep me"})
        await watcher.wait_for("new_message")
        return World(runner, owner, sock, watcher, channel["channelId"], sent["messageId"], instance, owner_id)

    built = runner.run(setup())
    before = runner.run(built.snapshot())
    watched_before = {e: len(built.watcher.received(e)) for e in WATCHED}
    yield built

    async def teardown() -> tuple[list[tuple[Any, ...]], bool]:
        after = await built.snapshot()
        alive = (
            built.sock.sio.connected and (await built.sock.call("typing_stop", built.valid("typing_stop")))["success"]
        )
        await asyncio.sleep(0.5)  # anything wrongly broadcast has arrived by now
        await built.sock.close()
        await built.watcher.close()
        await built.owner.close()
        return after, alive

    after, alive = runner.run(teardown())
    runner.stop()
    assert after == before, "a malformed payload changed stored messages"
    assert alive, "the socket did not survive"
    assert {e: len(built.watcher.received(e)) for e in WATCHED} == watched_before


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_payloads_are_refused_and_change_nothing(world: World, data: st.DataObject) -> None:
    event, payload = data.draw(malformed(world))
    world.reset_rate_windows()
    ack = world.runner.run(world.sock.call(event, payload, timeout=10))
    assert isinstance(ack, dict) and "success" in ack
    if event != "sync_request":  # reads may tolerate a junk optional field; they change nothing anyway
        assert ack["success"] is False, (event, payload, ack)
    if ack["success"] is False:
        assert ack["error"]["code"] in REFUSALS, ack
    assert world.sock.sio.connected
