"""SPEC §7: an answer of UNAVAILABLE (503) means "not applied". A service stopped for 10 s under load:
no write answered 503 is applied unless its caller retries, and a retry with the same idempotency key
applies it once. Messages and orders alike."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from relay_devstack import Stack
from relay_sdk import RelayClient
from relay_sdk.client import RelayError

from tests.e2e.conftest import relay_stack
from tests.waiting import until

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 10
RATE = 20  # writes per second while the service stops and returns


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory):
    instance = f"t-unavail-{uuid.uuid4().hex[:8]}"
    logs = tmp_path_factory.mktemp("unavailable-logs")
    env = {"RATE_LIMITS": "message=off,rest_write=off"}  # the default RPC timeout (5 s), shorter than the outage
    with relay_stack(instance, logs, services=("message", "order"), env=env) as running:
        yield running


async def until_accepted(write: Callable[[], Awaitable[dict]], timeout: float = 60) -> dict:
    """A client's retry loop: a write answered UNAVAILABLE is sent again (same idempotency key) until it lands."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await write()
        except RelayError as exc:
            assert exc.status == 503 and time.monotonic() < deadline, exc
            await asyncio.sleep(0.2)


@dataclass
class Load:
    """Writes at a steady rate, each with its own idempotency key; remembers how each was answered."""

    write: Callable[[int, str], object]
    answers: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    running: bool = True

    def count(self, status: int) -> int:
        return sum(1 for s in self.answers.values() if s == status)

    async def one(self, n: int, key: str) -> None:
        try:
            await self.write(n, key)  # type: ignore[misc]
            self.answers[key] = 201
        except RelayError as exc:
            self.answers[key] = exc.status

    async def run(self) -> None:
        tasks = []
        n = 0
        started = time.monotonic()
        while self.running:
            key = f"k{n}-{uuid.uuid4().hex[:6]}"
            self.keys.append(key)
            tasks.append(asyncio.create_task(self.one(n, key)))
            n += 1
            await asyncio.sleep(max(0.0, started + n / RATE - time.monotonic()))
        await asyncio.gather(*tasks)


async def stop_and_restart(stack: Stack, service: str, load: Load) -> None:
    """Under load: SIGTERM the service, keep it down OUTAGE_SECONDS, start it again, let writes land again."""
    runner = asyncio.create_task(load.run())
    await until(lambda: load.count(201) >= 20, 30, "writes flow before the stop", every=0.1)
    # the stop and the restart wait for the process in a thread: the load keeps flowing meanwhile
    await asyncio.to_thread(stack.kill, service, signal.SIGTERM)
    stopped = time.monotonic()
    await until(lambda: time.monotonic() - stopped >= OUTAGE_SECONDS, OUTAGE_SECONDS + 5, "the outage lasts", every=0.1)
    accepted_before = load.count(201)
    await asyncio.to_thread(stack.start_service, service)
    await until(lambda: load.count(201) >= accepted_before + 20, 30, "writes land again after the restart", every=0.1)
    load.running = False
    await runner
    assert load.count(503) >= RATE * 2, f"the outage was not felt: {load.count(503)} answered 503"
    assert set(load.answers.values()) <= {201, 503}, load.answers


async def test_messages_answered_503_during_a_service_stop_were_not_applied(own_stack: Stack, mint):
    urls = own_stack.gateway_urls
    visitor = RelayClient(urls[0], token=mint("v-unavail", "visitor"))
    posters = [visitor, RelayClient(urls[1], token=visitor.token)]
    chats = [(await visitor.post("/v2/chats", {}, expect=201))["chatId"] for _ in range(3)]
    agents = [RelayClient(url, token=mint("a-unavail", "commercial")) for url in urls]
    sockets = [a.socket() for a in agents]
    for sock in sockets:
        await sock.connect()
        for chat in chats:
            await sock.call("chat:join", {"chatId": chat})
    chat_of: dict[str, str] = {}

    async def post(n: int, key: str) -> None:
        chat_of[key] = chats[n % len(chats)]
        body = {"chatId": chat_of[key], "content": f"m{n}", "clientMessageId": key}
        await posters[n % 2].post("/v2/messages", body, expect=201)

    load = Load(post)
    await stop_and_restart(own_stack, "message", load)

    async def stored() -> dict[str, list[dict]]:
        out = {}
        for chat in chats:
            page = await visitor.history(chat, limit=200, afterSeq=0)
            assert not page["hasMore"]
            out[chat] = page["messages"]
        return out

    refused = {k for k, s in load.answers.items() if s == 503}
    accepted = {k for k, s in load.answers.items() if s == 201}
    before_retry = {m["clientMessageId"] for msgs in (await stored()).values() for m in msgs}
    assert before_retry & refused == set(), "writes answered 503 were applied without a retry"
    assert accepted <= before_retry

    for key in sorted(refused):  # the client retries what it was told was not applied: it lands once
        body = {"chatId": chat_of[key], "content": "retry", "clientMessageId": key}
        first = await until_accepted(lambda b=body: visitor.post("/v2/messages", b, expect=201))
        again = await until_accepted(lambda b=body: posters[1].post("/v2/messages", b, expect=201))
        assert again["messageId"] == first["messageId"]

    final = await stored()
    for chat, messages in final.items():
        keys = [m["clientMessageId"] for m in messages]
        assert len(keys) == len(set(keys)), "a message stored twice"
        assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1)), "seq has a gap"
        assert set(keys) == {k for k in load.keys if chat_of[k] == chat}
        for sock in sockets:  # every member socket, on both replicas, got each message once, in seq order
            await sock.wait_until(
                lambda s=sock, c=chat, n=len(messages): (
                    len([m for m in s.received("message:new") if m["chatId"] == c]) >= n
                ),
                timeout=20,
            )
            got = [m["seq"] for m in sock.received("message:new") if m["chatId"] == chat]
            assert got == [m["seq"] for m in messages]
    for sock in sockets:
        await sock.close()
    for client in (*posters, *agents):
        await client.close()


async def test_orders_answered_503_during_a_service_stop_were_not_created(own_stack: Stack, mint):
    urls = own_stack.gateway_urls
    token = mint("w-unavail", "WAITER", tenant=f"rest-{uuid.uuid4().hex[:6]}", claim="restaurantId")
    waiters = [RelayClient(url, token=token) for url in urls]

    async def create(n: int, key: str) -> None:
        headers = {"Idempotency-Key": key}
        await waiters[n % 2].post("/api/v1/orders", {"tableSessionId": key}, headers=headers, expect=201)

    load = Load(create)
    await stop_and_restart(own_stack, "order", load)

    async def tables() -> list[str]:
        orders = await waiters[0].get("/api/v1/orders", params={"limit": 500})
        return [o["tableSessionId"] for o in orders]

    refused = {k for k, s in load.answers.items() if s == 503}
    accepted = {k for k, s in load.answers.items() if s == 201}
    before_retry = await tables()
    assert set(before_retry) & refused == set(), "orders answered 503 were created without a retry"
    assert accepted <= set(before_retry)

    for key in sorted(refused):
        body, headers = {"tableSessionId": key}, {"Idempotency-Key": key}
        first = await until_accepted(
            lambda b=body, h=headers: waiters[0].post("/api/v1/orders", b, headers=h, expect=201)
        )
        again = await until_accepted(
            lambda b=body, h=headers: waiters[1].post("/api/v1/orders", b, headers=h, expect=201)
        )
        assert again["orderId"] == first["orderId"]

    final = await tables()
    assert sorted(final) == sorted(load.keys), "every order exactly once"
    for waiter in waiters:
        await waiter.close()
